package console

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// registryFile, supplierFile and ecuTypeFile are the admin API's registry format (README,
// "Admin API"); the console reads the registry in use in it and sends changes in it.
type registryFile struct {
	Suppliers []supplierFile `json:"suppliers"`
}

type supplierFile struct {
	ID        string        `json:"id"`
	Name      string        `json:"name"`
	Phase     string        `json:"phase"`
	Phases    []string      `json:"phases,omitempty"`
	SecretKey string        `json:"secretKey"`
	Token     string        `json:"token,omitempty"`
	EcuTypes  []ecuTypeFile `json:"ecuTypes"`
}

type ecuTypeFile struct {
	Type             string            `json:"type"`
	KeyIDs           []string          `json:"keyIds"`
	Clusters         []string          `json:"clusters,omitempty"`
	InitialMasterKey string            `json:"initialMasterKey,omitempty"`
	Flags            map[string]string `json:"flags,omitempty"`
}

// registry returns the registry in use, secrets included: for building a change, never shown.
func (c *Console) registry() (registryFile, error) {
	var f registryFile
	data, err := json.Marshal(c.cfg.KMS.Registry())
	if err != nil {
		return f, fmt.Errorf("read registry: %w", err)
	}
	if err := json.Unmarshal(data, &f); err != nil {
		return f, fmt.Errorf("read registry: %w", err)
	}
	return f, nil
}

// find returns the supplier of id (4 hex digits, either case), if registered.
func (f registryFile) find(id string) (supplierFile, bool) {
	for _, s := range f.Suppliers {
		if strings.EqualFold(s.ID, id) {
			return s, true
		}
	}
	return supplierFile{}, false
}

// findType returns the index of the supplier's ECU type typ, or -1.
func (s supplierFile) findType(typ string) int {
	for i, t := range s.EcuTypes {
		if strings.EqualFold(t.Type, typ) {
			return i
		}
	}
	return -1
}

// refusal is the admin API's refusal of a change: its message is shown as it is.
type refusal struct{ message string }

func (e *refusal) Error() string { return e.message }

// answer records the admin API's answer to an in-process request.
type answer struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (a *answer) Header() http.Header         { return a.header }
func (a *answer) Write(b []byte) (int, error) { return a.body.Write(b) }
func (a *answer) WriteHeader(status int) {
	if a.status == 0 {
		a.status = status
	}
}

// adminCall sends a change to the admin API in-process, as the admin: a refusal comes back as a
// *refusal with the API's message.
func (c *Console) adminCall(ctx context.Context, method, path string, body any) error {
	var data []byte
	if body != nil {
		var err error
		if data, err = json.Marshal(body); err != nil {
			return err
		}
	}
	req, err := http.NewRequestWithContext(ctx, method, path, bytes.NewReader(data))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.cfg.AdminToken)
	req.Header.Set("Content-Type", "application/json")
	a := &answer{header: http.Header{}}
	c.cfg.Admin.ServeHTTP(a, req)
	if a.status == 0 || a.status == http.StatusOK {
		return nil
	}
	var msg struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(a.body.Bytes(), &msg) != nil || msg.Error == "" {
		return errors.New("the admin API answered " + http.StatusText(a.status))
	}
	return &refusal{msg.Error}
}

// putSupplier replaces (or adds) a supplier through the admin API.
func (c *Console) putSupplier(ctx context.Context, s supplierFile) error {
	if s.ID == "" { // the registry's own message; the admin API has no route without an ID
		return &refusal{fmt.Sprintf("supplier id %q: want 4 hex digits", s.ID)}
	}
	return c.adminCall(ctx, http.MethodPut, "/admin/suppliers/"+url.PathEscape(s.ID), s)
}
