package console

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
)

// applyTypeForm sets what the ECU type form gives: an empty initial master key keeps the
// current one; empty flags keep the defaults.
func applyTypeForm(t *ecuTypeFile, form url.Values) {
	t.KeyIDs = form["keyIds"]
	t.Clusters = strings.FieldsFunc(form.Get("clusters"), func(r rune) bool { return r == ',' || r == ' ' || r == '\n' || r == '\r' || r == '\t' })
	if k := strings.TrimSpace(form.Get("initialMasterKey")); k != "" {
		t.InitialMasterKey = k
	}
	t.Flags = map[string]string{}
	for _, pt := range provisioningTypes {
		if f := strings.TrimSpace(form.Get("flags." + pt)); f != "" {
			t.Flags[pt] = f
		}
	}
}

func (c *Console) newType(w http.ResponseWriter, r *http.Request, v *view) {
	s, ok := c.lookupSupplier(w, r)
	if !ok {
		return
	}
	v.Title, v.Nav = "New ECU type of supplier "+s.ID, "suppliers"
	v.Data = typeView{New: true, Supplier: s.ID, KeyIDs: map[string]bool{}, Flags: map[string]string{}}
	c.render(w, http.StatusOK, "ecutype", v)
}

// saveType sends the supplier with its changed types to the admin API; a refusal shows the type
// form again with the API's message.
func (c *Console) saveType(w http.ResponseWriter, r *http.Request, v *view, s supplierFile, t ecuTypeFile, isNew bool) {
	err := c.putSupplier(r.Context(), s)
	if err == nil {
		http.Redirect(w, r, "/console/suppliers/"+url.PathEscape(s.ID)+"?done=saved", http.StatusSeeOther)
		return
	}
	var ref *refusal
	if !errors.As(err, &ref) {
		c.fail(w, "save the ECU type", err)
		return
	}
	tv := showType(s.ID, t)
	tv.New = isNew
	v.Title, v.Nav, v.Error, v.Data = "ECU type "+t.Type+" of supplier "+s.ID, "suppliers", redact(ref.message, r.PostForm, "initialMasterKey"), tv
	c.render(w, http.StatusBadRequest, "ecutype", v)
}

func (c *Console) createType(w http.ResponseWriter, r *http.Request, v *view) {
	s, ok := c.lookupSupplier(w, r)
	if !ok {
		return
	}
	t := ecuTypeFile{Type: strings.ToUpper(strings.TrimSpace(r.PostForm.Get("type")))}
	applyTypeForm(&t, r.PostForm)
	if s.findType(t.Type) >= 0 {
		tv := showType(s.ID, t)
		tv.New = true
		v.Title, v.Nav, v.Error, v.Data = "New ECU type of supplier "+s.ID, "suppliers", "ecu type "+t.Type+" exists already: edit it instead", tv
		c.render(w, http.StatusBadRequest, "ecutype", v)
		return
	}
	s.EcuTypes = append(s.EcuTypes, t)
	c.saveType(w, r, v, s, t, true)
}

// lookupType returns the supplier and the index of the ECU type the path names, answering 404
// when there is none.
func (c *Console) lookupType(w http.ResponseWriter, r *http.Request) (supplierFile, int, bool) {
	s, ok := c.lookupSupplier(w, r)
	if !ok {
		return s, -1, false
	}
	i := s.findType(r.PathValue("type"))
	if i < 0 {
		http.Error(w, "no ecu type "+r.PathValue("type")+" of supplier "+s.ID, http.StatusNotFound)
		return s, -1, false
	}
	return s, i, true
}

func (c *Console) ecuType(w http.ResponseWriter, r *http.Request, v *view) {
	s, i, ok := c.lookupType(w, r)
	if !ok {
		return
	}
	v.Title, v.Nav, v.Data = "ECU type "+s.EcuTypes[i].Type+" of supplier "+s.ID, "suppliers", showType(s.ID, s.EcuTypes[i])
	c.render(w, http.StatusOK, "ecutype", v)
}

func (c *Console) updateType(w http.ResponseWriter, r *http.Request, v *view) {
	s, i, ok := c.lookupType(w, r)
	if !ok {
		return
	}
	types := append([]ecuTypeFile{}, s.EcuTypes...)
	applyTypeForm(&types[i], r.PostForm)
	t := types[i]
	s.EcuTypes = types
	c.saveType(w, r, v, s, t, false)
}

func (c *Console) confirmDeleteType(w http.ResponseWriter, r *http.Request, v *view) {
	s, i, ok := c.lookupType(w, r)
	if !ok {
		return
	}
	typ := s.EcuTypes[i].Type
	base := "/console/suppliers/" + url.PathEscape(s.ID)
	v.Title, v.Nav = "Delete ECU type "+typ, "suppliers"
	v.Data = confirmation{Question: "Delete ECU type " + typ + " of supplier " + s.ID + "? Requests for its ECUs are refused from then on.",
		Action: base + "/types/" + url.PathEscape(typ) + "/delete", Button: "Delete ECU type " + typ, Back: base}
	c.render(w, http.StatusOK, "confirm", v)
}

func (c *Console) deleteType(w http.ResponseWriter, r *http.Request, v *view) {
	s, i, ok := c.lookupType(w, r)
	if !ok {
		return
	}
	s.EcuTypes = append(append([]ecuTypeFile{}, s.EcuTypes[:i]...), s.EcuTypes[i+1:]...)
	if err := c.putSupplier(r.Context(), s); err != nil {
		c.fail(w, "delete the ECU type", err)
		return
	}
	http.Redirect(w, r, "/console/suppliers/"+url.PathEscape(s.ID)+"?done=deleted", http.StatusSeeOther)
}
