#!/bin/sh
# tests/rtp/strict-test-epoll.sh - the source control suite with the relay
# waiting for packets with epoll (rtp_io epoll), whose packet path checks
# the sources of a whole batch at once.
RTP_IO=epoll
export RTP_IO
exec "$(dirname "$0")/strict-test.sh" "$@"
