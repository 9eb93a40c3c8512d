"""Limits shared by the device protocol, the push envelope and the store."""

import re

#: Identifiers (app ids, registration ids, task ids, message ids, node ids) are ASCII words,
#: so that they can sit inside Redis keys and log lines without escaping.
ID_PATTERN = r"^[A-Za-z0-9_.\-]{1,64}\Z"
ID_RE = re.compile(ID_PATTERN)
ID_MAX = 64
#: Account ids (user ids of the app) may also look like e-mail addresses or phone numbers.
ACCOUNT_RE = re.compile(r"^[A-Za-z0-9_.@+\-]{1,64}\Z")
#: Conversation ids of chat messages: an account id's characters and ``:`` (``group:42``), at
#: most 64 characters, since the conversation is the chat's collapse id too.
CONVERSATION_PATTERN = r"^[A-Za-z0-9_.@+:\-]{1,64}\Z"
#: A call rings now or never: its push may wait for an offline device at most a minute.
MAX_CALL_LIFETIME_S = 60

#: Largest websocket message a device may send, in bytes.
MAX_FRAME_BYTES = 16 * 1024
#: Largest message the server sends: a push at every text limit in 4-byte UTF-8 still fits.
MAX_SERVER_FRAME_BYTES = 64 * 1024
#: Notification text limits, in characters.
MAX_TITLE = 256
MAX_BODY = 4096
#: Custom data carried by a push: at most this many keys, and this many bytes once encoded.
MAX_DATA_KEYS = 64
MAX_DATA_BYTES = 4096
#: Languages one message may carry besides its default.
MAX_LOCALES = 50
#: Registration ids one push request may target.
MAX_TARGETS = 1000
#: A push waits for an offline device at most 7 days.
MAX_LIFETIME_S = 7 * 24 * 3600
#: Idempotency keys: printable ASCII words, as long as an id; a key is remembered 7 days.
IDEMPOTENCY_PATTERN = r"^[A-Za-z0-9_.:\-]{1,64}\Z"
IDEMPOTENCY_TTL_S = 7 * 24 * 3600
#: A push may be scheduled at most 90 days ahead.
MAX_SCHEDULE_AHEAD_S = 90 * 24 * 3600
#: Push speed (devices per second a push is spread at): bounds of what a request may ask.
MIN_SPEED = 10
MAX_SPEED = 1_000_000
#: Frequency caps (``proto.policy``): pushes an account may get per period, and the period's
#: bounds (a minute to 30 days, the longest a cap's window is kept in Redis).
MAX_CAP_COUNT = 1000
MIN_CAP_PERIOD_S = 60
MAX_CAP_PERIOD_S = 30 * 24 * 3600
#: Templates (``proto.templates``): variable names (as placeholders ``{{name}}``), how many
#: one template declares, how long a value may be, and how many templates an app keeps.
VARIABLE_NAME = r"[A-Za-z_][A-Za-z0-9_]{0,31}"
VARIABLE_PATTERN = rf"^{VARIABLE_NAME}\Z"
MAX_TEMPLATE_VARIABLES = 20
MAX_VARIABLE_VALUE = 1024
MAX_TEMPLATES = 1000
#: Vendor token length (FCM tokens are ~160 characters, Huawei's up to 128, APNs 64 hex).
MAX_VENDOR_TOKEN = 512
