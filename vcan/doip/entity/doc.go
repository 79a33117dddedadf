// Package entity is the server side of DoIP (ISO 13400-2): a DoIP entity, as a vehicle's gateway
// or an ECU with its own Ethernet port, that routes testers' diagnostic messages to the nodes
// registered at logical addresses (Register: a simulated ECU's Handle through Handler, or an
// ISO-TP connection behind a gateway through TransportTarget).
//
// The rules it implements, as the standard states them:
//
//   - Generic header: each message is checked in the standard's order, pattern (the inverse
//     version byte; version 0x02 or 0x03, and 0xFF on vehicle identification requests only),
//     payload type supported on this transport, length within MaxDataSize, memory
//     (MemoryBudget: payload bytes held at once over all sockets), length valid for the type;
//     a failure is answered with the generic NACK of that code (0x00 to 0x04). After 0x00 and
//     0x04 the socket is closed (the stream is out of step); after 0x01, 0x02 and 0x03 the
//     message's payload is read and discarded and the socket goes on.
//   - TCP_DATA: one socket per tester. Routing activation (types 0x00 default, 0x01 WWH-OBD, 0xE0
//     central security decided by the CentralSecurity hook) answers, in this order: 0x00 unknown
//     source address (outside Testers), 0x06 unsupported type, 0x07 TLS required (RequireTLS on a
//     plain socket), 0x02 another address already active on this socket, 0x03 the address active
//     on another socket whose tester answers an alive check (one that does not is closed and
//     loses the address), 0x01 MaxTesters sockets active and every one answers its alive check,
//     then the hook's code for 0xE0, else 0x10. The socket is closed after 0x00, 0x01, 0x02,
//     0x03, 0x06 and 0x07, and stays open after 0x04 and 0x05 for another try. At most
//     MaxTesters+1 sockets are open at once (the one more to be denied with 0x01); further
//     connections are closed as they come.
//   - Alive check: the entity sends the request (0x0007) and the tester answers with its source
//     address (0x0008) within AliveCheckTimeout.
//   - Diagnostic messages (0x8001): from a source address not active on the socket, NACK 0x02 and
//     the socket is closed; to an address no target is registered at, NACK 0x03 and the socket
//     stays open; over a target's MaxRequestLength, 0x04; a target that cannot take the request
//     (a gateway that cannot forward it), 0x06 or the code of its *ForwardError. Otherwise the
//     positive ACK (0x8002, without the optional previous message data), then each answer of the
//     target as its own diagnostic message, a response pending 7F xx 78 included, with no further
//     ACK; a suppressed positive response (3E 80) gets the ACK alone. ACK and NACK carry source =
//     the addressed node and target = the tester; everything is sent in the version of the
//     tester's message. Behind a gateway a request is ACKed once forwarded, whether or not the ECU
//     answers (the tester's P2 then runs out). Each target has its own queue per socket: requests
//     to one target are forwarded and acknowledged in order, and a target slow to take a request
//     holds up no other; requests waiting count against MemoryBudget.
//   - Timers: T_TCP_Initial_Inactivity (2 s) from the socket's opening until routing activation,
//     T_TCP_General_Inactivity (5 min) restarted by every message once routing is active; when
//     one runs out the socket is closed. They run on Config.Clock, so tests need no wall clock.
//     Writes have a wall-clock deadline (WriteTimeout).
//   - UDP_DISCOVERY: vehicle identification requests (plain, by EID, by VIN: only the entity
//     named answers), entity status and diagnostic power mode, each answered to its sender in the
//     request's version (the entity's Version for 0xFF); vehicle announcements, AnnounceCount of
//     them AnnounceInterval apart, to Config.Announce when set (none by default). The random
//     A_DoIP_Announce_Wait before the first announcement and before identification answers is
//     not applied: the entity answers at once.
//   - TLS (port 3496): Serve on a tls.Listener the caller makes with its certificate.
package entity
