package kms

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// AuditEntry is one line of the audit log: who did what to which slot, when; never a key.
type AuditEntry struct {
	Seq     int64  `json:"seq"`
	At      string `json:"at"`
	Actor   string `json:"actor"`
	Action  string `json:"action"`
	UID     string `json:"uid"`
	KeyID   int    `json:"keyId"`
	Counter *int64 `json:"counter,omitempty"`
	Outcome string `json:"outcome,omitempty"`
	Message string `json:"message,omitempty"`
	// Device and KeyNumber are a CLM change's deviceid and certificate or key number.
	Device    string `json:"device,omitempty"`
	KeyNumber *int64 `json:"keynumber,omitempty"`
}

// AuditLog reads the audit log.
type AuditLog interface {
	Audit(ctx context.Context, after int64, limit int) ([]AuditEntry, error)
}

// RegistrySaver keeps an edited registry so that the next start uses it.
type RegistrySaver interface {
	SaveRegistry(ctx context.Context, r *Registry) error
}

// Admin serves the admin API: the registry (read redacted, replaced whole, one supplier added,
// replaced or removed) and the audit log, for callers presenting the admin token.
type Admin struct {
	svc   *Service
	token string
	audit AuditLog
	save  RegistrySaver
	// Refresh, when set, puts the newest saved registry in use; it runs before an edit that
	// starts from the registry in use (one supplier added, replaced or removed), so that an edit
	// another replica saved a moment ago is built upon, not lost.
	Refresh func(ctx context.Context) error
}

// NewAdmin returns the admin API; with an empty token it answers every request with 403.
func NewAdmin(svc *Service, token string, audit AuditLog, save RegistrySaver) *Admin {
	return &Admin{svc: svc, token: token, audit: audit, save: save}
}

// Register adds the admin routes to mux.
func (a *Admin) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /admin/registry", a.guard(a.getRegistry))
	mux.HandleFunc("PUT /admin/registry", a.guard(a.putRegistry))
	mux.HandleFunc("PUT /admin/suppliers/{id}", a.guard(a.putSupplier))
	mux.HandleFunc("DELETE /admin/suppliers/{id}", a.guard(a.deleteSupplier))
	mux.HandleFunc("GET /admin/audit", a.guard(a.getAudit))
}

// adminError is the body of a refused admin request.
type adminError struct {
	Error string `json:"error"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func (a *Admin) guard(fn func(http.ResponseWriter, *http.Request)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if a.token == "" {
			writeJSON(w, http.StatusForbidden, adminError{"the admin API is disabled: start the server with -admin-token"})
			return
		}
		given, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || subtle.ConstantTimeCompare([]byte(given), []byte(a.token)) != 1 {
			writeJSON(w, http.StatusUnauthorized, adminError{"the admin token is missing or wrong"})
			return
		}
		fn(w, r)
	}
}

func (a *Admin) getRegistry(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, a.svc.Registry().Redacted())
}

// apply saves reg and puts it in use.
func (a *Admin) apply(w http.ResponseWriter, r *http.Request, reg *Registry) {
	if err := a.save.SaveRegistry(r.Context(), reg); err != nil {
		a.svc.log.Error("kms: save registry", "err", err)
		writeJSON(w, http.StatusInternalServerError, adminError{"the registry could not be saved"})
		return
	}
	a.svc.SetRegistry(reg)
	writeJSON(w, http.StatusOK, reg.Redacted())
}

func (a *Admin) putRegistry(w http.ResponseWriter, r *http.Request) {
	data, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		writeJSON(w, http.StatusBadRequest, adminError{err.Error()})
		return
	}
	reg, err := ParseRegistry(data, "json")
	if err != nil {
		writeJSON(w, http.StatusBadRequest, adminError{"registry: " + err.Error()})
		return
	}
	a.apply(w, r, reg)
}

// refresh runs Refresh, answering 500 when it fails.
func (a *Admin) refresh(w http.ResponseWriter, r *http.Request) bool {
	if a.Refresh == nil {
		return true
	}
	if err := a.Refresh(r.Context()); err != nil {
		a.svc.log.Error("kms: refresh registry", "err", err)
		writeJSON(w, http.StatusInternalServerError, adminError{"the registry could not be read"})
		return false
	}
	return true
}

// putSupplier adds the supplier in the body (with its EcuTypes), or replaces the one of that ID.
func (a *Admin) putSupplier(w http.ResponseWriter, r *http.Request) {
	var sf supplierFile
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&sf); err != nil {
		writeJSON(w, http.StatusBadRequest, adminError{"supplier: " + err.Error()})
		return
	}
	if sf.ID == "" {
		sf.ID = r.PathValue("id")
	}
	id, err := parseHex16(r.PathValue("id"))
	if err != nil || !strings.EqualFold(strings.TrimLeft(sf.ID, "0"), strings.TrimLeft(r.PathValue("id"), "0")) {
		writeJSON(w, http.StatusBadRequest, adminError{"supplier: the path's and the body's id differ or are not 4 hex digits"})
		return
	}
	one, err := (&registryFile{Suppliers: []supplierFile{sf}}).registry()
	if err != nil {
		writeJSON(w, http.StatusBadRequest, adminError{"supplier: " + err.Error()})
		return
	}
	if !a.refresh(w, r) {
		return
	}
	reg := a.svc.Registry().without(id)
	reg.Suppliers[id] = one.Suppliers[id]
	for k, t := range one.EcuTypes {
		reg.EcuTypes[k] = t
	}
	if err := reg.validate(); err != nil {
		writeJSON(w, http.StatusBadRequest, adminError{"supplier: " + err.Error()})
		return
	}
	a.apply(w, r, reg)
}

func (a *Admin) deleteSupplier(w http.ResponseWriter, r *http.Request) {
	if !a.refresh(w, r) {
		return
	}
	id, err := parseHex16(r.PathValue("id"))
	if err != nil || a.svc.Registry().Suppliers[id] == nil {
		writeJSON(w, http.StatusNotFound, adminError{"no supplier " + r.PathValue("id")})
		return
	}
	a.apply(w, r, a.svc.Registry().without(id))
}

// without returns a copy of the registry lacking supplier id and its EcuTypes.
func (reg *Registry) without(id uint16) *Registry {
	out := &Registry{Suppliers: map[uint16]*Supplier{}, EcuTypes: map[[2]uint16]*EcuType{}}
	for k, s := range reg.Suppliers {
		if k != id {
			out.Suppliers[k] = s
		}
	}
	for k, t := range reg.EcuTypes {
		if k[0] != id {
			out.EcuTypes[k] = t
		}
	}
	return out
}

func (a *Admin) getAudit(w http.ResponseWriter, r *http.Request) {
	after, limit := int64(0), 100
	if v := r.URL.Query().Get("after"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			writeJSON(w, http.StatusBadRequest, adminError{"after: want a sequence number"})
			return
		}
		after = n
	}
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			writeJSON(w, http.StatusBadRequest, adminError{"limit: want 1..1000"})
			return
		}
		limit = n
	}
	entries, err := a.audit.Audit(r.Context(), after, limit)
	if err != nil {
		a.svc.log.Error("kms: read audit", "err", err)
		writeJSON(w, http.StatusInternalServerError, adminError{"the audit log could not be read"})
		return
	}
	if entries == nil {
		entries = []AuditEntry{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"entries": entries})
}
