#!/bin/sh
# t_chat_slow.sh again, chatd and every client under the shim (issue: the
# same test passes over kernel TCP and over rudp).
RUDP_CHAT_SHIM=1 exec sh "$(dirname "$0")/t_chat_slow.sh"
