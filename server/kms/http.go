package kms

import (
	"crypto/subtle"
	"crypto/x509"
	"encoding/asn1"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/shekit/shekit/openapi/kmswire"
)

// The API's paths.
const (
	PathProvisioning = kmswire.PathProvisioning
	PathKeySync      = kmswire.PathKeySync
)

// Auth is how the API authenticates suppliers.
type Auth string

// The authentication modes. With AuthNone every request acts for nobody in particular; with the
// others a supplier may only act on ECUs whose UID carries its SupplierID.
const (
	AuthNone   Auth = "none"
	AuthBearer Auth = "bearer" // Authorization: Bearer <the supplier's token>
	AuthMTLS   Auth = "mtls"   // client certificate whose one CN is the SupplierID (4 hex digits, see CertSupplierID)
)

// Envelope is every answer's frame (the contract's).
type Envelope = kmswire.Envelope

// maxBody bounds a request body.
const maxBody = 64 << 10

// Handler serves the KMS API.
type Handler struct {
	svc  *Service
	auth Auth
	log  *slog.Logger
	// Observe, when set, is called for every answered request (for metrics).
	Observe func(endpoint, reason string, d time.Duration)
}

// NewHandler returns the API on svc.
func NewHandler(svc *Service, auth Auth, log *slog.Logger) *Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Handler{svc: svc, auth: auth, log: log}
}

// Register adds the API's routes to mux.
func (h *Handler) Register(mux *http.ServeMux) {
	mux.HandleFunc("POST "+PathProvisioning, h.serve("provision", h.provision))
	mux.HandleFunc("PUT "+PathProvisioning, h.serve("report", h.report))
	mux.HandleFunc("POST "+PathKeySync, h.serve("sync", h.sync))
	mux.HandleFunc("PUT "+PathKeySync, h.serve("sync-report", h.reportSync))
}

// caller authenticates the request.
func (h *Handler) caller(r *http.Request) (*Caller, *Error) {
	switch h.auth {
	case AuthBearer:
		token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || token == "" {
			return nil, fail("UNAUTHORIZED")
		}
		for _, s := range h.svc.Registry().Suppliers {
			if s.Token != "" && subtle.ConstantTimeCompare([]byte(s.Token), []byte(token)) == 1 {
				return &Caller{SupplierID: s.ID}, nil
			}
		}
		return nil, fail("UNAUTHORIZED")
	case AuthMTLS:
		if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
			return nil, fail("UNAUTHORIZED")
		}
		id, ok := CertSupplierID(r.TLS.PeerCertificates[0])
		if !ok || h.svc.Registry().Suppliers[id] == nil {
			return nil, fail("UNAUTHORIZED")
		}
		return &Caller{SupplierID: id}, nil
	}
	return nil, nil
}

// oidCommonName is the X.509 attribute type of a CommonName (2.5.4.3).
var oidCommonName = asn1.ObjectIdentifier{2, 5, 4, 3}

// CertSupplierID reads the SupplierID a client certificate names for -auth mtls: its subject must
// hold exactly one CommonName, of exactly 4 hex digits in either case ("001D" or "001d"; "1D",
// "0001D" or "0x1D" name nobody). A subject with two CommonNames is ambiguous and names nobody.
func CertSupplierID(cert *x509.Certificate) (uint16, bool) {
	var cns []string
	for _, a := range cert.Subject.Names {
		if a.Type.Equal(oidCommonName) {
			s, _ := a.Value.(string)
			cns = append(cns, s)
		}
	}
	if len(cns) != 1 || len(cns[0]) != 4 {
		return 0, false
	}
	b, err := hex.DecodeString(cns[0])
	if err != nil {
		return 0, false
	}
	return uint16(b[0])<<8 | uint16(b[1]), true
}

// WriteInternalError answers the INTERNAL envelope (HTTP 500), as the API does when its store
// fails; for a request that ran out of time before the API answered.
func WriteInternalError(w http.ResponseWriter) {
	e := fail("INTERNAL")
	writeEnvelope(w, e.Status, &Envelope{ResultStatus: "OperationFailed", ResultReason: string(e.Reason), ResultMessage: e.Message})
}

// serve wraps an endpoint: authentication, decoding, the envelope, the log line.
func (h *Handler) serve(name string, fn func(*http.Request, *Caller, fields) (*Records, *Error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		caller, e := h.caller(r)
		var rec *Records
		if e == nil {
			var f fields
			if f, e = decode(r); e == nil {
				rec, e = fn(r, caller, f)
			}
		}
		env, status := Envelope{ResultStatus: "Success", Records: rec}, http.StatusOK
		if e != nil {
			env = Envelope{ResultStatus: "OperationFailed", ResultReason: string(e.Reason), ResultMessage: e.Message}
			status = e.Status
		}
		writeEnvelope(w, status, &env)
		// The log line names the request, never its body: SupplierSecretKey must not reach a log.
		// Nothing of it is built when the level is off.
		if h.log.Enabled(r.Context(), slog.LevelInfo) {
			h.log.LogAttrs(r.Context(), slog.LevelInfo, "kms request", slog.String("endpoint", name), slog.Int("status", status),
				slog.String("reason", env.ResultReason), slog.String("actor", caller.actor()), slog.Duration("duration", time.Since(start)))
		}
		if h.Observe != nil {
			h.Observe(name, env.ResultReason, time.Since(start))
		}
	}
}

func (h *Handler) provision(r *http.Request, c *Caller, f fields) (*Records, *Error) {
	return h.svc.Provision(r.Context(), c, ProvisionRequest{ProvisioningType: f["ProvisioningType"], EcuID: f["EcuID"],
		KeyID: f["KeyID"], SupplierSecretKey: f["SupplierSecretKey"], Counter: f["Counter"], Challenge: f["Challenge"],
		Phase: f["Phase"]})
}

func reportRequest(f fields) ReportRequest {
	return ReportRequest{ProvisioningType: f["ProvisioningType"], EcuID: f["EcuID"], KeyID: f["KeyID"],
		ResultStatus: f["ResultStatus"], ResultMessage: f["ResultMessage"]}
}

func (h *Handler) report(r *http.Request, c *Caller, f fields) (*Records, *Error) {
	return nil, h.svc.Report(r.Context(), c, reportRequest(f))
}

func (h *Handler) sync(r *http.Request, c *Caller, f fields) (*Records, *Error) {
	return h.svc.Sync(r.Context(), c, SyncRequest{ProvisioningType: f["ProvisioningType"], EcuID: f["EcuID"], KeyID: f["KeyID"]})
}

func (h *Handler) reportSync(r *http.Request, c *Caller, f fields) (*Records, *Error) {
	return nil, h.svc.ReportSync(r.Context(), c, reportRequest(f))
}

// String names the mode.
func (a Auth) String() string { return string(a) }

// ParseAuth reads an authentication mode.
func ParseAuth(s string) (Auth, error) {
	switch Auth(s) {
	case AuthNone, AuthBearer, AuthMTLS:
		return Auth(s), nil
	}
	return "", fmt.Errorf("authentication %q: want none, bearer or mtls", s)
}
