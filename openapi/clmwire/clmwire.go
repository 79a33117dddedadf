// Package clmwire is the client side of NEC SecureWare/Credential Lifecycle Manager's WebAPI
// (openapi/clm.yaml): its paths and the user name of license-key authentication, as a client or
// a test speaks them. It depends on no server: a client of any CLM, the reference or another,
// uses these names.
package clmwire

// The API's paths (the document's chapters 3 to 6, and the CRL).
const (
	PathIDInfo       = "/SWCLM/v10/IDInfo"
	PathCredInfo     = "/SWCLM/v10/CredInfo"
	PathKeyInfo      = "/SWCLM/v10/KeyInfo"
	PathSystemStatus = "/SWCLM/v10/SystemStatus"
	PathCRL          = "/SWCLM/v10/crl/{catype}"
)

// LicenseUser is the HTTP Basic user name of license-key authentication (document 2.1); the
// password is the license key.
const LicenseUser = "secureware-clm"
