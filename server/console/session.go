package console

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"sync"
	"time"
)

// session is one signed-in browser.
type session struct {
	csrf    string    // the token every form of the session carries
	expires time.Time // absolute: signing in again starts a new session
}

// sessions are the signed-in browsers, server-side, by random ID.
type sessions struct {
	mu   sync.Mutex
	byID map[string]session
	ttl  time.Duration
	now  func() time.Time
}

// randomToken returns 32 random bytes, base64url-encoded.
func randomToken() string {
	b := make([]byte, 32)
	rand.Read(b) // never fails (crypto/rand)
	return base64.RawURLEncoding.EncodeToString(b)
}

// start opens a session and returns its ID.
func (s *sessions) start() (string, session) {
	id, ses := randomToken(), session{csrf: randomToken(), expires: s.now().Add(s.ttl)}
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, v := range s.byID { // drop the expired ones
		if !s.now().Before(v.expires) {
			delete(s.byID, k)
		}
	}
	s.byID[id] = ses
	return id, ses
}

// lookup returns the session of id when it exists and has not expired.
func (s *sessions) lookup(id string) (session, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ses, ok := s.byID[id]
	if !ok || !s.now().Before(ses.expires) {
		delete(s.byID, id)
		return session{}, false
	}
	return ses, true
}

// end closes the session of id.
func (s *sessions) end(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.byID, id)
}

// sameToken compares two tokens in constant time; an empty one never matches.
func sameToken(a, b string) bool {
	return a != "" && b != "" && subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}
