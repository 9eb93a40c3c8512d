"""Vendor senders: deliver offline pushes through each phone vendor's channel."""
