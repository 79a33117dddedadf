package console

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/shekit/shekit/server/kms"
	"github.com/shekit/shekit/server/store"
)

// auditForm is the audit page's filter as the form gives it.
type auditForm struct {
	Actor, Action, UID, From, To string
}

// timeBound reads a datetime-local value (UTC) as the store's bound: RFC 3339 without a zone,
// which compares with the stored times as text.
func timeBound(s string) (string, error) {
	if s == "" {
		return "", nil
	}
	for _, layout := range []string{"2006-01-02T15:04", "2006-01-02T15:04:05", time.RFC3339} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC().Format("2006-01-02T15:04:05"), nil
		}
	}
	return "", fmt.Errorf("time %q: want YYYY-MM-DDThh:mm (UTC)", s)
}

// filter reads the audit filter of a request's query.
func auditFilter(q url.Values) (auditForm, store.AuditFilter, error) {
	form := auditForm{Actor: strings.TrimSpace(q.Get("actor")), Action: strings.TrimSpace(q.Get("action")),
		UID: strings.ToLower(strings.TrimSpace(q.Get("uid"))), From: q.Get("from"), To: q.Get("to")}
	f := store.AuditFilter{Actor: form.Actor, Action: form.Action, UID: form.UID}
	var err error
	if f.From, err = timeBound(form.From); err != nil {
		return form, f, fmt.Errorf("from: %w", err)
	}
	if f.To, err = timeBound(form.To); err != nil {
		return form, f, fmt.Errorf("to: %w", err)
	}
	if b := q.Get("before"); b != "" {
		if f.Before, err = strconv.ParseInt(b, 10, 64); err != nil || f.Before < 1 {
			return form, f, fmt.Errorf("before: want a sequence number")
		}
	}
	return form, f, nil
}

// query writes the filter as a query string, with extra parameters.
func (a auditForm) query(extra ...string) string {
	q := url.Values{}
	for k, v := range map[string]string{"actor": a.Actor, "action": a.Action, "uid": a.UID, "from": a.From, "to": a.To} {
		if v != "" {
			q.Set(k, v)
		}
	}
	for i := 0; i+1 < len(extra); i += 2 {
		q.Set(extra[i], extra[i+1])
	}
	return q.Encode()
}

// auditPage is the audit page's data.
type auditPage struct {
	auditForm
	Entries    []kms.AuditEntry
	Next       string
	CSV, JSONL string
}

func (c *Console) audit(w http.ResponseWriter, r *http.Request, v *view) {
	form, f, err := auditFilter(r.URL.Query())
	data := auditPage{auditForm: form, CSV: "/console/audit.csv?" + form.query(), JSONL: "/console/audit.jsonl?" + form.query()}
	v.Title, v.Nav, v.Data = "Audit log", "audit", &data
	if err != nil {
		v.Error = err.Error()
		c.render(w, http.StatusBadRequest, "audit", v)
		return
	}
	entries, err := c.cfg.Store.AuditNewest(r.Context(), f, pageSize+1)
	if err != nil {
		c.fail(w, "read the audit log", err)
		return
	}
	if len(entries) > pageSize {
		entries = entries[:pageSize]
		data.Next = "/console/audit?" + form.query("before", strconv.FormatInt(entries[pageSize-1].Seq, 10))
	}
	data.Entries = entries
	c.render(w, http.StatusOK, "audit", v)
}

// exportBatch is how many entries an export reads at a time.
const exportBatch = 1000

// export writes every entry the request's filter selects, newest first, with write, flushing
// after each batch: a long export streams, and the server's request timeout cuts it off.
func (c *Console) export(w http.ResponseWriter, r *http.Request, contentType, name string, write func([]kms.AuditEntry) error) {
	_, f, err := auditFilter(r.URL.Query())
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Content-Disposition", `attachment; filename="`+name+`"`)
	for {
		entries, err := c.cfg.Store.AuditNewest(r.Context(), f, exportBatch)
		if err != nil { // the answer has begun: end it short, the log says why
			c.cfg.Log.Error("console: export the audit log", "err", err)
			return
		}
		if err := write(entries); err != nil || len(entries) < exportBatch {
			return
		}
		if fl, ok := w.(http.Flusher); ok { // stream: the server's deadline then holds nothing back
			fl.Flush()
		}
		f.Before = entries[len(entries)-1].Seq
	}
}

// cell keeps a spreadsheet from reading a CSV cell as a formula.
func cell(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

func optional(n *int64) string {
	if n == nil {
		return ""
	}
	return strconv.FormatInt(*n, 10)
}

func (c *Console) auditCSV(w http.ResponseWriter, r *http.Request, v *view) {
	cw, header := csv.NewWriter(w), false
	c.export(w, r, "text/csv; charset=utf-8", "audit.csv", func(entries []kms.AuditEntry) error {
		if !header {
			cw.Write([]string{"seq", "at", "actor", "action", "uid", "keyId", "counter", "outcome", "message", "device", "keynumber"})
			header = true
		}
		for _, e := range entries {
			cw.Write([]string{strconv.FormatInt(e.Seq, 10), e.At, cell(e.Actor), cell(e.Action), e.UID, strconv.Itoa(e.KeyID),
				optional(e.Counter), cell(e.Outcome), cell(e.Message), cell(e.Device), optional(e.KeyNumber)})
		}
		cw.Flush()
		return cw.Error()
	})
	cw.Flush()
}

func (c *Console) auditJSONL(w http.ResponseWriter, r *http.Request, v *view) {
	enc := json.NewEncoder(w)
	c.export(w, r, "application/jsonl", "audit.jsonl", func(entries []kms.AuditEntry) error {
		for _, e := range entries {
			if err := enc.Encode(e); err != nil {
				return err
			}
		}
		return nil
	})
}
