/*
 * Inputs that once stopped `make fuzz`, replayed through the fuzz target's
 * own script and checks (tests/fuzz_conn.c, built here without libFuzzer):
 * a check that fails aborts, and Criterion reports the test as crashed.
 * Each input is the target's crash file as hex, with what it found.
 */
#include <criterion/criterion.h>
#include <stddef.h>
#include <stdint.h>

#include "fuzz_conn.c"

/*
 * Issue 30, finding 9: the server shuts down, then a DATA packet with a
 * valid header comes from another address (the client's port + 1) with a
 * STREAM frame "offset 16014, no bytes, FIN". A server takes such a packet
 * as any other (core/path.h: it validates the address before it sends
 * there, but processes the frames), so it believed the FIN, as it would
 * from the client's own address. The model excused forged FINs only for
 * injections from the peer's address and took this one for a FIN out of
 * nowhere: "c->peer_fin == W.legit_fin[1 - ep] || forged_fin_at(ep,
 * c->peer_fin)" failed.
 */
Test(fuzzregress, conn_forged_fin_from_another_address_is_a_forged_fin, .timeout = 30)
{
    static const uint8_t in[] = {0x30, 0x6f, 0xff, 0x67, 0xd8, 0xd6,
                                 0x1d, 0xff, 0x0b, 0x7e, 0x8e};
    cr_assert(LLVMFuzzerTestOneInput(in, sizeof in) == 0);
}
