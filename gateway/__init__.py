"""The gateway role: websocket long connections to devices, presence, and online delivery."""
