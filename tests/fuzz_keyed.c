/*
 * fuzz_keyed.c: libFuzzer target for the keyed input path: fuzz_conn.c's
 * script against two keyed contexts, with its stricter checks (see
 * FUZZ_KEYED there): an attacker without the key, whatever it injects,
 * replays or alters, changes nothing an application sees.
 */
#define FUZZ_KEYED 1
#include "fuzz_conn.c"
