// Package console is the KMS's web console at /console/: suppliers and ECU types (the OEM
// document's "Suppliers & ECUs" menu), the KMS's view of each ECU's key slots, the audit log, the
// CLM's CA and CRL, and live numbers. It is server-rendered html/template with embedded assets
// and no script; sign-in is with the admin token, then a server-side session cookie, a CSRF token
// on every form and a strict Content-Security-Policy. Every registry change goes through the
// admin API in-process, so the console has its validation and messages. No secret (a supplier's
// secret key or token, an initial master key, the admin token) is ever rendered: a page says
// "set" and offers to replace it.
package console

import (
	"embed"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/shekit/shekit/server/clm"
	"github.com/shekit/shekit/server/kms"
	"github.com/shekit/shekit/server/store"
)

//go:embed templates/*.html
var templateFiles embed.FS

//go:embed static
var staticFiles embed.FS

// Config describes a console.
type Config struct {
	AdminToken string       // signs in; empty: no console (every /console/ path is 404)
	Admin      http.Handler // the admin API (/admin/...), which every registry change goes through
	KMS        *kms.Service
	Store      *store.Store
	CLM        *clm.Service        // nil: no CLM page
	Metrics    prometheus.Gatherer // the numbers of /metrics; nil: no numbers page
	SessionTTL time.Duration       // how long a sign-in lasts (default 1 h)
	Now        func() time.Time    // default time.Now
	Log        *slog.Logger
}

// Console serves the web console.
type Console struct {
	cfg      Config
	sessions *sessions
	pages    map[string]*template.Template
}

// cookie names: the session, and the sign-in form's CSRF value (before any session).
const (
	sessionCookie = "shekit_console"
	loginCookie   = "shekit_console_login"
)

// csp is the Content-Security-Policy of every console answer: nothing but the console's own
// files, no inline script or style, no framing.
const csp = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// New returns the console; it panics when the embedded templates do not parse (a build defect).
func New(cfg Config) *Console {
	if cfg.SessionTTL <= 0 {
		cfg.SessionTTL = time.Hour
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	c := &Console{cfg: cfg, sessions: &sessions{byID: map[string]session{}, ttl: cfg.SessionTTL, now: cfg.Now},
		pages: map[string]*template.Template{}}
	names, err := fs.Glob(templateFiles, "templates/*.html")
	if err != nil {
		panic(err)
	}
	for _, n := range names {
		if n == "templates/layout.html" {
			continue
		}
		c.pages[n[len("templates/"):len(n)-len(".html")]] = template.Must(
			template.New("layout.html").Funcs(funcs).ParseFS(templateFiles, "templates/layout.html", n))
	}
	return c
}

// Register adds the console's routes to mux; without an admin token it adds none.
func (c *Console) Register(mux *http.ServeMux) {
	if c.cfg.AdminToken == "" {
		return
	}
	static, _ := fs.Sub(staticFiles, "static")
	mux.Handle("GET /console/static/", c.headers(http.StripPrefix("/console/static/", http.FileServerFS(static))))
	mux.Handle("GET /console/{$}", c.headers(http.HandlerFunc(c.home)))
	mux.Handle("GET /console/login", c.headers(http.HandlerFunc(c.loginForm)))
	mux.Handle("POST /console/login", c.headers(http.HandlerFunc(c.login)))
	routes := map[string]func(http.ResponseWriter, *http.Request, *view){
		"POST /console/logout":                             c.logout,
		"GET /console/suppliers":                           c.suppliers,
		"GET /console/suppliers/new":                       c.newSupplier,
		"POST /console/suppliers/new":                      c.createSupplier,
		"GET /console/suppliers/{id}":                      c.supplier,
		"POST /console/suppliers/{id}":                     c.updateSupplier,
		"GET /console/suppliers/{id}/delete":               c.confirmDeleteSupplier,
		"POST /console/suppliers/{id}/delete":              c.deleteSupplier,
		"GET /console/suppliers/{id}/types/new":            c.newType,
		"POST /console/suppliers/{id}/types/new":           c.createType,
		"GET /console/suppliers/{id}/types/{type}":         c.ecuType,
		"POST /console/suppliers/{id}/types/{type}":        c.updateType,
		"GET /console/suppliers/{id}/types/{type}/delete":  c.confirmDeleteType,
		"POST /console/suppliers/{id}/types/{type}/delete": c.deleteType,
		"GET /console/ecus":                                c.ecus,
		"GET /console/ecus/{uid}":                          c.ecu,
		"GET /console/audit":                               c.audit,
		"GET /console/audit.csv":                           c.auditCSV,
		"GET /console/audit.jsonl":                         c.auditJSONL,
		"GET /console/numbers":                             c.numbers,
	}
	for pattern, fn := range routes {
		mux.Handle(pattern, c.headers(c.signedIn(fn)))
	}
	c.registerCLM(mux)
}

// headers sets the security headers of every console answer.
func (c *Console) headers(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", csp)
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("Referrer-Policy", "no-referrer")
		hd.Set("Cache-Control", "no-store")
		h.ServeHTTP(w, r)
	})
}

// view is what every page template gets.
type view struct {
	Title string
	Nav   string // the menu entry to mark current
	CSRF  string
	Error string // a refused change's message
	Done  string // a change's confirmation
	Data  any
	sid   string
}

// signedIn runs fn for a request of a signed-in browser: others are sent to sign in (a GET) or
// refused with 403 (a change). A change (POST) must carry the session's CSRF token, else 403.
func (c *Console) signedIn(fn func(http.ResponseWriter, *http.Request, *view)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var ses session
		ck, err := r.Cookie(sessionCookie)
		ok := err == nil
		if ok {
			ses, ok = c.sessions.lookup(ck.Value)
		}
		if !ok {
			if r.Method == http.MethodGet {
				http.Redirect(w, r, "/console/login", http.StatusSeeOther)
				return
			}
			http.Error(w, "sign in first", http.StatusForbidden)
			return
		}
		if r.Method != http.MethodGet {
			r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
			if err := r.ParseForm(); err != nil {
				http.Error(w, "the form could not be read", http.StatusBadRequest)
				return
			}
			if !sameToken(r.PostForm.Get("csrf"), ses.csrf) {
				http.Error(w, "the form's CSRF token is missing or wrong: reload the page and try again", http.StatusForbidden)
				return
			}
		}
		fn(w, r, &view{CSRF: ses.csrf, sid: ck.Value})
	})
}

// render writes page with v, or a 500 when the template fails (logged, nothing secret in it).
func (c *Console) render(w http.ResponseWriter, status int, page string, v *view) {
	t, ok := c.pages[page]
	if !ok {
		http.Error(w, "no such page", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if err := t.Execute(w, v); err != nil {
		c.cfg.Log.Error("console: render", "page", page, "err", err)
	}
}

// fail answers a failed read of the store or the registry.
func (c *Console) fail(w http.ResponseWriter, op string, err error) {
	c.cfg.Log.Error("console: "+op, "err", err)
	http.Error(w, op+" failed; see the server's log", http.StatusInternalServerError)
}

func (c *Console) home(w http.ResponseWriter, r *http.Request) {
	http.Redirect(w, r, "/console/suppliers", http.StatusSeeOther)
}
