package clm

import (
	"bufio"
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// The API's paths.
const (
	PathIDInfo       = "/SWCLM/v10/IDInfo"
	PathCredInfo     = "/SWCLM/v10/CredInfo"
	PathKeyInfo      = "/SWCLM/v10/KeyInfo"
	PathSystemStatus = "/SWCLM/v10/SystemStatus"
	PathCRL          = "/SWCLM/v10/crl/{catype}"
	// LicenseUser is the HTTP Basic user name of license-key authentication.
	LicenseUser = "secureware-clm"
)

// aliases maps the document's spelling variants to the names the server uses.
var aliases = map[string]string{"tenanted": "tenantid", "caffilepath": "cafilepath", "cafepath": "cafilepath"}

// request is a decoded request body: its string parameters (a number counts as its digits)
// and ext_data.
type request struct {
	f   map[string]string
	ext map[string]string
}

func (r request) get(name string) string { return r.f[name] }

// Bounds of a request, so that no request costs the server much more memory than the
// document's parameters need: the body, and ext_data's items (each also bounded: name 128,
// value 256 bytes). Over them, 1104.
const (
	maxBody     = 64 << 10
	maxExtItems = 32
	maxExtBytes = 8 << 10 // names and values together
)

// decode reads a JSON object. A parameter is a string or a number; a string holding U+0000 is
// refused (1103) like any other value that is not allowed. A body over maxBody, or ext_data over
// its bounds, is 1104.
func decode(body io.Reader) (request, *Error) {
	data, err := io.ReadAll(io.LimitReader(body, maxBody+1))
	if err != nil {
		return request{}, fail(codeJSON, "body: %v", err)
	}
	if len(data) > maxBody {
		return request{}, fail(codeLength, "body over %d bytes", maxBody)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil || raw == nil {
		return request{}, fail(codeJSON, "body is not a JSON object")
	}
	r := request{f: map[string]string{}}
	for k, v := range raw {
		if k == "ext_data" {
			if e := r.extData(v); e != nil {
				return request{}, e
			}
			continue
		}
		if a, ok := aliases[k]; ok {
			k = a
		}
		if s, ok := text(v); ok {
			r.f[k] = s
		} else if string(v) != "null" {
			return request{}, fail(codeParameter, "%s is not a string", k)
		}
	}
	return r, nil
}

// text reads a parameter's value: a string without U+0000, or a number as its digits (null
// reads as ""). A string without escapes in valid UTF-8 is its bytes between the quotes,
// without a decoder's pass of its own.
func text(v json.RawMessage) (string, bool) {
	if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' && bytes.IndexByte(v, '\\') < 0 && utf8.Valid(v) {
		return string(v[1 : len(v)-1]), true // no escape: no U+0000 either
	}
	var s string
	if json.Unmarshal(v, &s) == nil {
		return s, !strings.ContainsRune(s, 0)
	}
	var n json.Number
	if json.Unmarshal(v, &n) == nil {
		return n.String(), true
	}
	return "", false
}

// extData reads ext_data: an object of at most maxExtItems strings (or numbers), maxExtBytes in
// all.
func (r *request) extData(v json.RawMessage) *Error {
	var m map[string]json.RawMessage
	if json.Unmarshal(v, &m) != nil {
		return fail(codeParameter, "ext_data is not an object")
	}
	if len(m) > maxExtItems {
		return fail(codeLength, "ext_data has %d items", len(m))
	}
	r.ext = map[string]string{}
	size := 0
	for name, value := range m {
		s, ok := text(value)
		if !ok || strings.ContainsRune(name, 0) {
			return fail(codeParameter, "ext_data %q is not a string", name)
		}
		r.ext[name] = s
		size += len(name) + len(s)
	}
	if size > maxExtBytes {
		return fail(codeLength, "ext_data holds %d bytes", size)
	}
	return nil
}

// required returns 1102 for the first of names that is missing or empty.
func (r request) required(names ...string) *Error {
	for _, n := range names {
		if r.f[n] == "" {
			return fail(codeRequired, "%s", n)
		}
	}
	return nil
}

// limits are the maximum lengths in bytes the document lists.
var limits = map[string]int{"devicename": 256, "clientsubject": 512, "passphrase": 128, "cafilepath": 1024,
	"clientfilepath": 1024, "filepath": 1024, "newfilepath": 1024, "commonkeyfilepath": 1024, "keyfilepath": 1024, "alias": 64}

// lengths returns 1104 for a parameter or ext_data item over its limit.
func (r request) lengths(aliasLimited bool) *Error {
	for name, max := range limits {
		if name == "alias" && !aliasLimited {
			continue
		}
		if len(r.f[name]) > max {
			return fail(codeLength, "%s is longer than %d bytes", name, max)
		}
	}
	for k, v := range r.ext {
		if len(k) > 128 || len(v) > 256 {
			return fail(codeLength, "ext_data item %q", k)
		}
	}
	return nil
}

// answer is a successful response body.
type answer map[string]any

// Handler returns the API on a mux of its own.
func (s *Service) Handler() http.Handler {
	mux := http.NewServeMux()
	s.Register(mux)
	return mux
}

// Register adds the API's routes to mux.
func (s *Service) Register(mux *http.ServeMux) {
	mux.HandleFunc("POST "+PathIDInfo, s.serve(http.MethodPost, s.idInfo))
	mux.HandleFunc("GET "+PathIDInfo, s.licensed(s.serveIDs))
	mux.HandleFunc("POST "+PathCredInfo, s.serve(http.MethodPost, s.credInfo))
	mux.HandleFunc("POST "+PathKeyInfo, s.serve(http.MethodPost, s.keyInfo))
	mux.HandleFunc("GET "+PathSystemStatus, s.serve(http.MethodGet, s.systemStatus))
	mux.HandleFunc("GET "+PathCRL, s.licensed(s.serveCRL))
}

// licensed checks license-key authentication: HTTP Basic, user secureware-clm, password the
// license key. A missing or wrong key is answered 401 with a Basic challenge (RFC 7617) and
// errorcode 1201 (password mismatch) in the body; the table's status for 1201, 403, is that of an
// ID's wrong password.
func (s *Service) licensed(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		user, pass, ok := r.BasicAuth()
		if !ok || user != LicenseUser || subtle.ConstantTimeCompare([]byte(pass), []byte(s.cfg.License)) != 1 {
			w.Header().Set("WWW-Authenticate", `Basic realm="SecureWare/CLM"`)
			e := fail(codePassword, "license key")
			e.Status = http.StatusUnauthorized
			s.write(w, r, 0, nil, e)
			return
		}
		next(w, r)
	}
}

// serve wraps an operation: license, then answer.
func (s *Service) serve(method string, op func(context.Context, request) (answer, *Error)) http.HandlerFunc {
	return s.licensed(s.respond(method, op))
}

// respond runs an operation on the request's parameters (the body of a POST, the query of a
// GET) and writes its answer.
func (s *Service) respond(method string, op func(context.Context, request) (answer, *Error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		var req request
		var e *Error
		if method == http.MethodPost {
			req, e = decode(r.Body)
		} else {
			req = request{f: map[string]string{}}
			for name, v := range r.URL.Query() {
				req.f[name] = v[0]
			}
		}
		status, body := http.StatusOK, answer(nil)
		if e == nil {
			body, e = op(r.Context(), req)
		}
		if method == http.MethodPost && req.get("mode") == "create" {
			status = http.StatusCreated
		}
		s.write(w, r, status, body, e)
		code := 0
		if e != nil {
			code = e.Code
		}
		if s.log.Enabled(r.Context(), slog.LevelInfo) { // nothing of the line is built when its level is off
			s.log.LogAttrs(r.Context(), slog.LevelInfo, "clm request", slog.String("path", r.URL.Path), slog.String("mode", req.get("mode")),
				slog.Int("errorcode", code), slog.Duration("duration", time.Since(start)))
		}
	}
}

// write answers body with status, or the refusal e.
func (s *Service) write(w http.ResponseWriter, r *http.Request, status int, body answer, e *Error) {
	if e != nil {
		status, body = e.Status, answer{"errorcode": e.Code}
		if e.Status >= 500 {
			s.log.Error("clm refused", "path", r.URL.Path, "errorcode", e.Code, "detail", e.Detail)
		}
	} else {
		body["errorcode"] = 0
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(body)
}

// serveCRL is GET crl/{catype}: the DER CRL of the CA (ca1, also named CA).
func (s *Service) serveCRL(w http.ResponseWriter, r *http.Request) {
	if ct := r.PathValue("catype"); ct != "ca1" && ct != "CA" {
		s.write(w, r, 0, nil, fail(codeCAType, "catype %q", ct))
		return
	}
	crl, err := s.currentCRL(r.Context())
	if err != nil {
		s.write(w, r, 0, nil, s.internal("crl", err))
		return
	}
	w.Header().Set("Content-Type", "application/pkix-crl")
	w.Header().Set("Content-Length", strconv.Itoa(len(crl)))
	w.Write(crl)
}

// serveIDs is GET IDInfo: every ID with its password, or with ?keyid= that one (listID). Every
// ID is streamed, read from the store a page at a time (each page its own read transaction: an
// ID created or deleted meanwhile may or may not be listed), so that the answer's size does not
// bound the server's memory. A store failure after the first page cuts the answer off (the client
// sees a broken answer, never a short list).
func (s *Service) serveIDs(w http.ResponseWriter, r *http.Request) {
	if r.URL.Query().Get("keyid") != "" {
		s.respond(http.MethodGet, s.listID)(w, r)
		return
	}
	start := time.Now()
	page, last, e := s.idPage(r.Context(), "")
	if e != nil {
		s.write(w, r, 0, nil, e)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	out := bufio.NewWriter(w)
	out.WriteString(`{"errorcode":0,"keyinfo":[`)
	n := 0
	for {
		for _, info := range page {
			if n > 0 {
				out.WriteByte(',')
			}
			b, _ := json.Marshal(info)
			out.Write(b)
			n++
		}
		if len(page) < s.cfg.IDPage {
			break
		}
		flush(out, w)
		if page, last, e = s.idPage(r.Context(), last); e != nil {
			s.log.Error("clm: GET IDInfo cut off", "errorcode", e.Code, "listed", n)
			out.Flush()
			panic(http.ErrAbortHandler)
		}
	}
	out.WriteString("]}\n")
	flush(out, w)
	s.log.Info("clm request", "path", r.URL.Path, "listed", n, "duration", time.Since(start))
}

// flush sends what out holds on to the client now (w may hold the answer back until flushed).
func flush(out *bufio.Writer, w http.ResponseWriter) {
	out.Flush()
	if f, ok := w.(http.Flusher); ok {
		f.Flush()
	}
}
