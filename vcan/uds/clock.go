package uds

import "github.com/shekit/shekit/vcan/isotp"

// Clock is the time source of a Client's P2 and P2* timers: the transport layer's clock type, so
// that one clock serves a client and its ISO-TP connection.
type Clock = isotp.Clock

// SystemClock is the real clock (package time).
var SystemClock = isotp.SystemClock
