package console

import (
	"errors"
	"net/http"
	"net/url"
	"sort"
	"strings"
)

// supplierView is a supplier as a page shows it: its secrets only as whether they are set.
type supplierView struct {
	New                 bool
	ID, Name, Phase     string
	Prod, Dev           bool // among its phases
	SecretSet, TokenSet bool
	Types               []typeView
}

// typeView is an ECU type as a page shows it: its initial master key only as whether it is set.
type typeView struct {
	New        bool
	Supplier   string
	Type       string
	KeyIDs     map[string]bool
	KeyList    string
	Clusters   string
	MasterSet  bool
	Flags      map[string]string
	FlagsShown string
}

// provisioningTypes are the flag sets an ECU type has, one per provisioning type.
var provisioningTypes = []string{"EcuMasterKey", "SupplierSymmKey", "SecOCKey"}

// keyIDs are the KeyIDs an ECU type may allow, as the registry writes them.
var keyIDs = []string{"1", "2", "3", "4", "5", "6", "7", "8", "9", "A", "B", "C", "D"}

func showSupplier(s supplierFile) supplierView {
	v := supplierView{ID: s.ID, Name: s.Name, Phase: s.Phase, SecretSet: s.SecretKey != "", TokenSet: s.Token != ""}
	for _, p := range s.Phases {
		v.Prod, v.Dev = v.Prod || p == "Prod", v.Dev || p == "Dev"
	}
	for _, t := range s.EcuTypes {
		v.Types = append(v.Types, showType(s.ID, t))
	}
	return v
}

func showType(supplier string, t ecuTypeFile) typeView {
	v := typeView{Supplier: supplier, Type: t.Type, KeyIDs: map[string]bool{}, Clusters: strings.Join(t.Clusters, ", "),
		MasterSet: t.InitialMasterKey != "", Flags: map[string]string{}, KeyList: strings.Join(t.KeyIDs, ", ")}
	for _, k := range t.KeyIDs {
		v.KeyIDs[strings.ToUpper(k)] = true
	}
	var shown []string
	for _, pt := range provisioningTypes {
		v.Flags[pt] = t.Flags[pt]
		if t.Flags[pt] != "" {
			shown = append(shown, pt+" "+t.Flags[pt])
		}
	}
	sort.Strings(shown)
	v.FlagsShown = strings.Join(shown, ", ")
	return v
}

// redact replaces in a refusal's message the values typed into the form's secret fields (the
// registry's messages quote a malformed key), so that no typed secret comes back in a page.
func redact(message string, form url.Values, fields ...string) string {
	for _, f := range fields {
		if v := strings.TrimSpace(form.Get(f)); v != "" {
			message = strings.ReplaceAll(message, v, "(the value given)")
		}
	}
	return message
}

// done is the confirmation a redirect after a change asks for (?done=…).
var done = map[string]string{"saved": "Saved.", "deleted": "Deleted.", "revoked": "Revoked: the certificate is in the CRL below."}

func (c *Console) suppliers(w http.ResponseWriter, r *http.Request, v *view) {
	reg, err := c.registry()
	if err != nil {
		c.fail(w, "read the registry", err)
		return
	}
	var list []supplierView
	for _, s := range reg.Suppliers {
		list = append(list, showSupplier(s))
	}
	v.Title, v.Nav, v.Done, v.Data = "Suppliers & ECU types", "suppliers", done[r.URL.Query().Get("done")], list
	c.render(w, http.StatusOK, "suppliers", v)
}

func (c *Console) newSupplier(w http.ResponseWriter, r *http.Request, v *view) {
	v.Title, v.Nav, v.Data = "New supplier", "suppliers", supplierView{New: true, Phase: "Dev"}
	c.render(w, http.StatusOK, "supplier", v)
}

// applySupplierForm sets what the supplier form gives: an empty secret key or token keeps the
// current one.
func applySupplierForm(s *supplierFile, form url.Values) {
	s.Name = strings.TrimSpace(form.Get("name"))
	s.Phase = form.Get("phase")
	s.Phases = form["phases"]
	if k := strings.TrimSpace(form.Get("secretKey")); k != "" {
		s.SecretKey = k
	}
	if form.Get("removeToken") != "" {
		s.Token = ""
	} else if t := strings.TrimSpace(form.Get("token")); t != "" {
		s.Token = t
	}
}

// saveSupplier sends s to the admin API; a refusal shows the form again with the API's message.
func (c *Console) saveSupplier(w http.ResponseWriter, r *http.Request, v *view, s supplierFile, isNew bool) {
	err := c.putSupplier(r.Context(), s)
	if err == nil {
		http.Redirect(w, r, "/console/suppliers/"+url.PathEscape(s.ID)+"?done=saved", http.StatusSeeOther)
		return
	}
	var ref *refusal
	if !errors.As(err, &ref) {
		c.fail(w, "save the supplier", err)
		return
	}
	sv := showSupplier(s)
	sv.New = isNew
	v.Title, v.Nav, v.Error, v.Data = "Supplier "+s.ID, "suppliers", redact(ref.message, r.PostForm, "secretKey", "token"), sv
	c.render(w, http.StatusBadRequest, "supplier", v)
}

func (c *Console) createSupplier(w http.ResponseWriter, r *http.Request, v *view) {
	reg, err := c.registry()
	if err != nil {
		c.fail(w, "read the registry", err)
		return
	}
	s := supplierFile{ID: strings.ToUpper(strings.TrimSpace(r.PostForm.Get("id")))}
	applySupplierForm(&s, r.PostForm)
	if _, taken := reg.find(s.ID); taken {
		sv := showSupplier(s)
		sv.New = true
		v.Title, v.Nav, v.Error, v.Data = "New supplier", "suppliers", "supplier "+s.ID+" exists already: edit it instead", sv
		c.render(w, http.StatusBadRequest, "supplier", v)
		return
	}
	c.saveSupplier(w, r, v, s, true)
}

// lookupSupplier returns the supplier the path names, answering 404 when there is none.
func (c *Console) lookupSupplier(w http.ResponseWriter, r *http.Request) (supplierFile, bool) {
	reg, err := c.registry()
	if err != nil {
		c.fail(w, "read the registry", err)
		return supplierFile{}, false
	}
	s, ok := reg.find(r.PathValue("id"))
	if !ok {
		http.Error(w, "no supplier "+r.PathValue("id"), http.StatusNotFound)
	}
	return s, ok
}

func (c *Console) supplier(w http.ResponseWriter, r *http.Request, v *view) {
	s, ok := c.lookupSupplier(w, r)
	if !ok {
		return
	}
	v.Title, v.Nav, v.Done, v.Data = "Supplier "+s.ID, "suppliers", done[r.URL.Query().Get("done")], showSupplier(s)
	c.render(w, http.StatusOK, "supplier", v)
}

func (c *Console) updateSupplier(w http.ResponseWriter, r *http.Request, v *view) {
	s, ok := c.lookupSupplier(w, r)
	if !ok {
		return
	}
	applySupplierForm(&s, r.PostForm)
	c.saveSupplier(w, r, v, s, false)
}

// confirmation is the data of the page that asks before a delete or a revocation.
type confirmation struct {
	Question, Action, Button, Back string
}

func (c *Console) confirmDeleteSupplier(w http.ResponseWriter, r *http.Request, v *view) {
	s, ok := c.lookupSupplier(w, r)
	if !ok {
		return
	}
	base := "/console/suppliers/" + url.PathEscape(s.ID)
	v.Title, v.Nav = "Delete supplier "+s.ID, "suppliers"
	v.Data = confirmation{Question: "Delete supplier " + s.ID + " (" + s.Name + ") and its " + plural(len(s.EcuTypes), "ECU type") +
		"? Its requests are refused from then on.", Action: base + "/delete", Button: "Delete supplier " + s.ID, Back: base}
	c.render(w, http.StatusOK, "confirm", v)
}

func (c *Console) deleteSupplier(w http.ResponseWriter, r *http.Request, v *view) {
	s, ok := c.lookupSupplier(w, r)
	if !ok {
		return
	}
	if err := c.adminCall(r.Context(), http.MethodDelete, "/admin/suppliers/"+url.PathEscape(s.ID), nil); err != nil {
		c.fail(w, "delete the supplier", err)
		return
	}
	http.Redirect(w, r, "/console/suppliers?done=deleted", http.StatusSeeOther)
}
