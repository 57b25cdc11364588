/* chatd: membership: leaving, closing, admission under -m, the waiting
 * clients' places, and drops for a slow transport. */

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "chatd.h"

/* ---- membership ---------------------------------------------------------- */

/* Takes c out of the chat; it stays open to flush what it is owed.  Its
 * receipts are settled now, with credit for what its transport has acked if
 * the connection is sound: settling them later would let a sender's later
 * message complete before an earlier one, and receipts come in order. */
void leave_chat(struct client *c, bool credit)
{
    tracks_settle(c, credit);
    if (c->state == CS_ACTIVE)
        S.nactive--;
    else if (c->state == CS_WAITING) {
        S.nwaiting--;
        S.waiting_moved = true;
    }
    c->state = CS_LEAVING;
    c->in_len = 0;
    c->in_discard = false;
    c->leave_deadline = S.now + CHAT_LINGER_MS;
    if (S.phase != PH_RUNNING && c->leave_deadline > S.close_deadline)
        c->leave_deadline = S.close_deadline;
}

void close_client(struct client *c, bool credit)
{
    if (c->dead)
        return;
    tracks_settle(c, credit);
    c->dead = true;
}

/* The connection broke (reset, write error): announce and close at once. */
void client_fail(struct client *c)
{
    if (c->dead)
        return;
    if (c->state == CS_ACTIVE) {
        leave_chat(c, false);
        announce(c, "%s left (%u online)", c->nick, S.nactive);
    } else if (c->state == CS_WAITING) {
        leave_chat(c, false);
    }
    if (S.verbose)
        say("#%llu %s: connection lost", (unsigned long long)c->id, c->nick);
    close_client(c, false);
}

void admit(struct client *c)
{
    if (c->state == CS_WAITING) {
        S.nwaiting--;
        S.waiting_moved = true;
    }
    c->state = CS_ACTIVE;
    c->admitted = ++S.next_admit;
    S.nactive++;
    notice(c, false, "welcome %s (%u online; arrival #%llu, admitted #%llu)", c->nick,
           S.nactive, (unsigned long long)c->id, (unsigned long long)c->admitted);
    announce(c, "%s joined (%u online)", c->nick, S.nactive);
    if (S.verbose)
        say("#%llu %s admitted", (unsigned long long)c->id, c->nick);
}

bool has_slot(void)
{
    return S.max_active == 0 || S.nactive < S.max_active;
}

/* Admits waiting clients in arrival order while there are slots, then tells
 * each one still waiting its new place in the line. */
void admit_waiting(void)
{
    if (S.phase != PH_RUNNING)
        return;
    for (struct client *c = S.head; c && S.nwaiting > 0 && has_slot(); c = c->next)
        if (c->state == CS_WAITING && !c->dead && c->drop == DROP_NONE)
            admit(c);
    if (!S.waiting_moved)
        return;
    S.waiting_moved = false;
    long ahead = 0;
    for (struct client *c = S.head; c; c = c->next) {
        if (c->state != CS_WAITING || c->dead)
            continue;
        if (c->told_pos != ahead) {
            notice(c, false, "waiting: %ld ahead of you", ahead);
            c->told_pos = ahead;
        }
        ahead++;
    }
}

long waiting_ahead(const struct client *w)
{
    long n = 0;
    for (const struct client *c = S.head; c && c != w; c = c->next)
        if (c->state == CS_WAITING && !c->dead)
            n++;
    return n;
}

/* Drops every client marked too slow.  Runs until no new marks appear: the
 * "dropped" notices themselves can push another client over its bound. */
void process_drops(void)
{
    while (S.drops) {
        S.drops = false;
        for (struct client *c = S.head; c; c = c->next) {
            if (c->drop == DROP_NONE || c->dead || c->state == CS_LEAVING)
                continue;
            char why[96];
            if (c->drop == DROP_QUEUE)
                snprintf(why, sizeof why, "too slow (more than %zu KiB behind)", S.qmax / 1024);
            else
                snprintf(why, sizeof why, "too slow (no progress for %.1f s)",
                         (double)S.stall_ms / 1000.0);
            bool was_active = c->state == CS_ACTIVE;
            /* It will not ack anything soon: what it has not acked counts as
             * not delivered now, so nobody's receipts wait on it. */
            leave_chat(c, true);
            notice(c, true, "you were dropped: %s", why);
            if (was_active)
                announce(c, "dropped %s: %s (%u online)", c->nick, why, S.nactive);
            S.n_drops++;
            say("dropped #%llu %s: %s", (unsigned long long)c->id, c->nick, why);
        }
    }
}
