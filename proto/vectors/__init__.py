"""Test vectors of the device protocol for SDKs in other languages (see ``README.md``)."""
