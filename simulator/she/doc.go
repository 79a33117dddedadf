// Package she is a software model of the Secure Hardware Extension (SHE), as specified by HIS
// ("SHE - Secure Hardware Extension, Functional Specification v1.1") and carried on in AUTOSAR's
// SecureHardwareExtensions technical report, with NXP's CSEc variant as a second profile.
//
// The package has two layers:
//
//   - Pure functions for the protocol math: AES Miyaguchi-Preneel compression ([CompressMP], [MP]),
//     the key derivation function ([KDF]), AES-CMAC ([CMAC], RFC 4493), the memory update protocol
//     ([BuildMessages] for M1-M5, [OpenM1M3], [VerifyM4M5]), the CMD_GET_ID MAC ([GetIDMAC]) and the
//     debug authorization value ([DebugAuthorization]). They hold no state and are safe for
//     concurrent use; the reference server uses them to build M1-M5.
//   - A stateful [Engine] that executes the SHE commands against key slots with counters and flags,
//     the status register, secure boot, the PRNG and debug authorization, and commits every change to
//     its non-volatile memory through a [Store] before it answers.
//
// Conventions (see the README's SHE section): byte strings are big-endian as transmitted; the five
// key flags are written most significant first as WRITE_PROTECTION, BOOT_PROTECTION,
// DEBUGGER_PROTECTION, KEY_USAGE, WILDCARD (e.g. "01101"); KEY_USAGE set means a MAC key; WILDCARD set
// means the key may not be updated with the wildcard UID 0. MAC comparisons are constant-time.
//
// AES-CMAC is computed by a fixed-size implementation in this package that needs no per-call
// buffers; it is cross-checked in the tests against RFC 4493's vectors and against
// github.com/aead/cmac, an independent implementation.
package she
