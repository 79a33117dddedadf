package console

import (
	"net/http"
)

// setCookie sets a console cookie: HttpOnly, SameSite=Strict, Secure on TLS, for /console/.
func setCookie(w http.ResponseWriter, r *http.Request, name, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: value, Path: "/console/", MaxAge: maxAge,
		HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode})
}

// loginForm shows the sign-in form with a fresh CSRF value, also set as a cookie (double
// submit: a form posted from another site cannot carry the cookie's value).
func (c *Console) loginForm(w http.ResponseWriter, r *http.Request) {
	token := randomToken()
	setCookie(w, r, loginCookie, token, 600)
	c.render(w, http.StatusOK, "login", &view{Title: "Sign in", CSRF: token})
}

// login starts a session when the admin token is right.
func (c *Console) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 8<<10)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "the form could not be read", http.StatusBadRequest)
		return
	}
	ck, err := r.Cookie(loginCookie)
	if err != nil || !sameToken(ck.Value, r.PostForm.Get("csrf")) {
		http.Error(w, "the form's CSRF token is missing or wrong: reload the page and try again", http.StatusForbidden)
		return
	}
	if !sameToken(r.PostForm.Get("token"), c.cfg.AdminToken) {
		c.cfg.Log.Warn("console: sign-in refused", "remote", r.RemoteAddr)
		token := randomToken()
		setCookie(w, r, loginCookie, token, 600)
		c.render(w, http.StatusUnauthorized, "login", &view{Title: "Sign in", CSRF: token, Error: "the admin token is missing or wrong"})
		return
	}
	id, _ := c.sessions.start()
	setCookie(w, r, loginCookie, "", -1)
	setCookie(w, r, sessionCookie, id, int(c.cfg.SessionTTL.Seconds()))
	http.Redirect(w, r, "/console/suppliers", http.StatusSeeOther)
}

// logout ends the session.
func (c *Console) logout(w http.ResponseWriter, r *http.Request, v *view) {
	c.sessions.end(v.sid)
	setCookie(w, r, sessionCookie, "", -1)
	http.Redirect(w, r, "/console/login", http.StatusSeeOther)
}
