/*
 * halfclose.c: TCP_INFO's state after the application's own half-close.
 *
 * TCP changes state in shutdown(SHUT_WR) itself: ESTABLISHED becomes
 * FIN_WAIT1 and CLOSE_WAIT becomes LAST_ACK at once, even while the FIN
 * waits behind unsent data (tcp_shutdown() -> tcp_close_state() in
 * net/ipv4/tcp.c). The engine learns of the shutdown only when it has read
 * everything the application wrote before it, up to the unix socket's EOF,
 * which takes as long as the connection has no room for those bytes. The
 * application's own end of the bridge knows at once: shutdown(SHUT_WR) set
 * SEND_SHUTDOWN on it, and a send of zero bytes says EPIPE then and only
 * then (unix_stream_sendmsg() in net/unix/af_unix.c checks it before
 * copying anything; MSG_NOSIGNAL: no SIGPIPE, MSG_DONTWAIT: never blocks,
 * and nothing is queued). The engine shutting its own end (the peer's FIN)
 * sets RCV_SHUTDOWN on the application's end, not SEND_SHUTDOWN, so the
 * probe does not confuse the two directions.
 */
#include <errno.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include "interpose.h"
#include "base/poison.h"

uint8_t shim_halfclose_state(int fd, uint8_t published)
{
    if (published != TCP_ESTABLISHED && published != TCP_CLOSE_WAIT)
        return published;
    int saved = errno;
    ssize_t r = real_send(fd, "", 0, MSG_DONTWAIT | MSG_NOSIGNAL);
    int shut = r < 0 && errno == EPIPE;
    errno = saved;
    if (!shut)
        return published;
    return published == TCP_ESTABLISHED ? TCP_FIN_WAIT1 : TCP_LAST_ACK;
}
