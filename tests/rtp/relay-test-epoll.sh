#!/bin/sh
# tests/rtp/relay-test-epoll.sh - the media relay suite with the relay
# waiting for packets with epoll (rtp_io epoll), the way it works where the
# kernel or the build has no io_uring.
RTP_IO=epoll
export RTP_IO
exec "$(dirname "$0")/relay-test.sh" "$@"
