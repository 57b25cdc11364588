#!/bin/sh
# t_chat_broadcast.sh again, keyed: chatd and every client under the shim
# with one RUDP_KEY_FILE (issue 13: the chat server runs keyed too); chatd
# refuses a client without the key (chatlib.sh).
RUDP_CHAT_KEYED=1 exec sh "$(dirname "$0")/t_chat_broadcast.sh"
