package report

import (
	"regexp"
	"sort"
	"strings"
)

// Redacted is the text that replaces a redacted value.
const Redacted = "[redacted]"

// sensitiveWords are the name fragments (lower case) that mark a field's value as secret.
var sensitiveWords = []string{"key", "password", "secret", "token", "license", "authorization"}

var (
	// jsonField matches "name": "string" | number | true | false | null.
	jsonField = regexp.MustCompile(`"((?:[^"\\]|\\.)*)"(\s*:\s*)("(?:[^"\\]|\\.)*"|-?[0-9][0-9.eE+-]*|true|false|null)`)
	// escapedJSONField matches the same inside a quoted string: \"name\": \"value\".
	escapedJSONField = regexp.MustCompile(`\\"([A-Za-z0-9_.-]*)\\"(\s*:\s*)(\\"(?:[^"\\]|\\\\\\"|\\[^"])*\\"|-?[0-9][0-9.eE+-]*|true|false|null)`)
	// yamlLine matches a "name: value" line (YAML key or HTTP header, optionally after "- ", "> " or "< ").
	yamlLine = regexp.MustCompile(`^(\s*(?:[-<>]\s+)?)([A-Za-z_][A-Za-z0-9_.-]*)(\s*:[ \t]*)(.*)$`)
	// nameValue matches name=value with a quoted or bare value.
	nameValue = regexp.MustCompile(`(^|[^A-Za-z0-9_.-])([A-Za-z_][A-Za-z0-9_.-]*)=("(?:[^"\\]|\\.)*"|'[^']*'|[^\s&;,"'<>(){}\[\]]+)`)
)

// Redactor replaces secrets in text: listed secret strings, and the values of JSON fields, YAML
// keys, HTTP headers and name=value pairs whose name marks them as secret. It is safe for
// concurrent use.
type Redactor struct {
	secrets *regexp.Regexp // nil when there are no secrets
	keep    map[string]bool
}

// NewRedactor returns a Redactor for the given secret strings (those shorter than 4 characters
// are ignored; matching is case-insensitive) and the field names (case-insensitive) whose values
// are kept even though the name contains a sensitive word, such as "KeyID".
func NewRedactor(secrets []string, keep []string) *Redactor {
	r := &Redactor{keep: map[string]bool{}}
	for _, k := range keep {
		r.keep[strings.ToLower(k)] = true
	}
	var lits []string
	for _, s := range secrets {
		if len(s) >= 4 {
			lits = append(lits, s)
		}
	}
	// Longest first, so a secret containing another is replaced whole.
	sort.SliceStable(lits, func(i, j int) bool { return len(lits[i]) > len(lits[j]) })
	if len(lits) > 0 {
		q := make([]string, len(lits))
		for i, s := range lits {
			q[i] = regexp.QuoteMeta(s)
		}
		r.secrets = regexp.MustCompile(`(?i)` + strings.Join(q, "|"))
	}
	return r
}

// Sensitive reports whether a field of this name has its value redacted.
func (r *Redactor) Sensitive(name string) bool {
	n := strings.ToLower(name)
	if r != nil && r.keep[n] {
		return false
	}
	for _, w := range sensitiveWords {
		if strings.Contains(n, w) {
			return true
		}
	}
	return false
}

// String returns s with secrets replaced by "[redacted]". A nil Redactor still redacts
// sensitive fields by name, keeping none.
func (r *Redactor) String(s string) string {
	if s == "" {
		return s
	}
	if r != nil && r.secrets != nil {
		s = r.secrets.ReplaceAllLiteralString(s, Redacted)
	}
	s = r.replaceValues(jsonField, s, 1, 3, `"`+Redacted+`"`)
	s = r.replaceValues(escapedJSONField, s, 1, 3, `\"`+Redacted+`\"`)
	s = r.lines(s)
	s = r.replaceValues(nameValue, s, 2, 3, Redacted)
	return s
}

// replaceValues replaces submatch valueGroup of every match of re whose submatch nameGroup is a
// sensitive name.
func (r *Redactor) replaceValues(re *regexp.Regexp, s string, nameGroup, valueGroup int, with string) string {
	ms := re.FindAllStringSubmatchIndex(s, -1)
	if ms == nil {
		return s
	}
	var b strings.Builder
	last := 0
	for _, m := range ms {
		name := s[m[2*nameGroup]:m[2*nameGroup+1]]
		vs, ve := m[2*valueGroup], m[2*valueGroup+1]
		if !r.Sensitive(name) || s[vs:ve] == with {
			continue
		}
		b.WriteString(s[last:vs])
		b.WriteString(with)
		last = ve
	}
	b.WriteString(s[last:])
	return b.String()
}

// lines redacts the values of "name: value" lines (YAML keys and HTTP headers).
func (r *Redactor) lines(s string) string {
	ls := strings.Split(s, "\n")
	changed := false
	for i, l := range ls {
		m := yamlLine.FindStringSubmatch(strings.TrimSuffix(l, "\r"))
		if m == nil || !r.Sensitive(m[2]) {
			continue
		}
		if v := strings.TrimSpace(m[4]); v == "" || v == Redacted || v == `"`+Redacted+`"` {
			continue
		}
		ls[i] = m[1] + m[2] + m[3] + Redacted
		if strings.HasSuffix(l, "\r") {
			ls[i] += "\r"
		}
		changed = true
	}
	if !changed {
		return s
	}
	return strings.Join(ls, "\n")
}
