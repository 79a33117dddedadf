package console

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/shekit/shekit/server/clm"
)

// registerCLM adds the CLM's pages when the console has a CLM.
func (c *Console) registerCLM(mux *http.ServeMux) {
	if c.cfg.CLM == nil {
		return
	}
	for pattern, fn := range map[string]func(http.ResponseWriter, *http.Request, *view){
		"GET /console/clm":                    c.clmHome,
		"GET /console/clm/ca.pem":             c.caPEM,
		"GET /console/clm/crl.pem":            c.crlPEM,
		"GET /console/clm/{list}":             c.clmList,
		"GET /console/clm/certs/{id}/pem":     c.certPEM,
		"GET /console/clm/certs/{id}/revoke":  c.confirmRevoke,
		"POST /console/clm/certs/{id}/revoke": c.revoke,
	} {
		mux.Handle(pattern, c.headers(c.signedIn(fn)))
	}
}

// crlView is the CA and CRL part of the CLM page.
type crlView struct {
	CASubject, CANotBefore, CANotAfter string
	Number, ThisUpdate, NextUpdate     string
	Revoked                            []revokedView
}

type revokedView struct{ Serial, At string }

func stamp(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05Z") }

func (c *Console) clmHome(w http.ResponseWriter, r *http.Request, v *view) {
	ca := c.cfg.CLM.CACert()
	data := crlView{CASubject: ca.Subject.String(), CANotBefore: stamp(ca.NotBefore), CANotAfter: stamp(ca.NotAfter)}
	der, err := c.cfg.CLM.CRL(r.Context())
	if err != nil {
		c.fail(w, "read the CRL", err)
		return
	}
	crl, err := x509.ParseRevocationList(der)
	if err != nil {
		c.fail(w, "read the CRL", err)
		return
	}
	data.Number, data.ThisUpdate, data.NextUpdate = crl.Number.String(), stamp(crl.ThisUpdate), stamp(crl.NextUpdate)
	for _, e := range crl.RevokedCertificateEntries {
		data.Revoked = append(data.Revoked, revokedView{Serial: strings.ToUpper(e.SerialNumber.Text(16)), At: stamp(e.RevocationTime)})
	}
	v.Title, v.Nav, v.Done, v.Data = "CLM: CA and CRL", "clm", done[r.URL.Query().Get("done")], data
	c.render(w, http.StatusOK, "clm", v)
}

// download answers a PEM file.
func download(w http.ResponseWriter, name, body string) {
	w.Header().Set("Content-Type", "application/x-pem-file")
	w.Header().Set("Content-Disposition", `attachment; filename="`+name+`"`)
	w.Write([]byte(body))
}

func (c *Console) caPEM(w http.ResponseWriter, r *http.Request, v *view) {
	download(w, "ca.pem", string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.cfg.CLM.CACert().Raw})))
}

func (c *Console) crlPEM(w http.ResponseWriter, r *http.Request, v *view) {
	der, err := c.cfg.CLM.CRL(r.Context())
	if err != nil {
		c.fail(w, "read the CRL", err)
		return
	}
	download(w, "crl.pem", string(pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: der})))
}

// listView is a page of one kind of CLM object: a table of text cells, with a certificate's
// download and revoke links.
type listView struct {
	Kind    string
	Headers []string
	Rows    []listRow
	Next    string
}

type listRow struct {
	Cells       []string
	PEM, Revoke string
}

// clmLists are the CLM's object lists: their titles and how to read a page.
var clmLists = map[string]string{"ids": "IDs", "devices": "Devices", "certs": "Certificates", "keys": "Keys"}

func (c *Console) clmList(w http.ResponseWriter, r *http.Request, v *view) {
	kind := r.PathValue("list")
	title, ok := clmLists[kind]
	if !ok {
		http.Error(w, "no CLM list "+kind, http.StatusNotFound)
		return
	}
	after := r.URL.Query().Get("after")
	data, last, err := c.readList(r, kind, after)
	if err != nil {
		c.fail(w, "read the CLM's "+kind, err)
		return
	}
	if len(data.Rows) > pageSize {
		data.Rows = data.Rows[:pageSize]
		data.Next = "/console/clm/" + kind + "?" + url.Values{"after": {last}}.Encode()
	}
	v.Title, v.Nav, v.Done, v.Data = "CLM: "+title, "clm", done[r.URL.Query().Get("done")], data
	c.render(w, http.StatusOK, "clmlist", v)
}

// readList reads a page (and one more row) of kind after after; last is the ID of the page's
// last row, where the next page starts.
func (c *Console) readList(r *http.Request, kind, after string) (listView, string, error) {
	ctx, l, ids := r.Context(), listView{Kind: kind}, []string{}
	day := func(t time.Time) string { return t.Format("2006-01-02") }
	switch kind {
	case "ids":
		page, err := c.cfg.CLM.IDs(ctx, after, pageSize+1)
		l.Headers = []string{"KeyID", "Tenant", "Alias", "Status", "Expires"}
		for _, x := range page {
			ids, l.Rows = append(ids, x.KeyID), append(l.Rows, listRow{Cells: []string{x.KeyID, x.TenantID, x.Alias, x.Status, day(x.Expiration)}})
		}
		return l, lastOf(ids), err
	case "devices":
		page, err := c.cfg.CLM.Devices(ctx, after, pageSize+1)
		l.Headers = []string{"DeviceID", "Name", "Registered through", "Status", "Expires"}
		for _, x := range page {
			ids, l.Rows = append(ids, x.DeviceID), append(l.Rows, listRow{Cells: []string{x.DeviceID, x.Name, x.Owner, x.Status, day(x.Expiration)}})
		}
		return l, lastOf(ids), err
	case "certs":
		page, err := c.cfg.CLM.Certificates(ctx, after, pageSize+1)
		l.Headers = []string{"Keynumber", "Subject", "Serial", "Device", "Status", "Valid from", "Valid to"}
		for _, x := range page {
			row := listRow{Cells: []string{fmt.Sprint(x.KeyNumber), x.Subject, x.Serial, x.DeviceID, x.Status, day(x.NotBefore), day(x.NotAfter)},
				PEM: "/console/clm/certs/" + url.PathEscape(x.ID) + "/pem"}
			if x.Status == "valid" {
				row.Revoke = "/console/clm/certs/" + url.PathEscape(x.ID) + "/revoke"
			}
			ids, l.Rows = append(ids, x.ID), append(l.Rows, row)
		}
		return l, lastOf(ids), err
	default:
		page, err := c.cfg.CLM.Keys(ctx, after, pageSize+1)
		l.Headers = []string{"Keynumber", "Type", "Length (bits)", "Alias", "Device", "Status", "Expires"}
		for _, x := range page {
			ids, l.Rows = append(ids, x.ID), append(l.Rows, listRow{Cells: []string{fmt.Sprint(x.KeyNumber), x.KeyType, fmt.Sprint(x.Length), x.Alias, x.DeviceID, x.Status, day(x.Expiration)}})
		}
		return l, lastOf(ids), err
	}
}

// lastOf returns the ID of the last row of a full page (the next page starts after it).
func lastOf(ids []string) string {
	if len(ids) <= pageSize {
		return ""
	}
	return ids[pageSize-1]
}

func (c *Console) certPEM(w http.ResponseWriter, r *http.Request, v *view) {
	p, err := c.cfg.CLM.CertificatePEM(r.Context(), r.PathValue("id"))
	if errors.Is(err, clm.ErrNoCertificate) {
		http.Error(w, "no certificate "+r.PathValue("id"), http.StatusNotFound)
		return
	}
	if err != nil {
		c.fail(w, "read the certificate", err)
		return
	}
	download(w, "certificate-"+r.PathValue("id")+".pem", p)
}

func (c *Console) confirmRevoke(w http.ResponseWriter, r *http.Request, v *view) {
	id := r.PathValue("id")
	v.Title, v.Nav = "Revoke certificate "+id, "clm"
	v.Data = confirmation{Question: "Revoke certificate " + id + "? It is listed in the CRL from then on; this cannot be undone.",
		Action: "/console/clm/certs/" + url.PathEscape(id) + "/revoke", Button: "Revoke certificate " + id, Back: "/console/clm/certs"}
	c.render(w, http.StatusOK, "confirm", v)
}

func (c *Console) revoke(w http.ResponseWriter, r *http.Request, v *view) {
	_, err := c.cfg.CLM.RevokeCertificate(r.Context(), r.PathValue("id"), "console")
	if errors.Is(err, clm.ErrNoCertificate) {
		http.Error(w, "no certificate "+r.PathValue("id"), http.StatusNotFound)
		return
	}
	if err != nil {
		c.fail(w, "revoke the certificate", err)
		return
	}
	http.Redirect(w, r, "/console/clm?done=revoked", http.StatusSeeOther)
}
