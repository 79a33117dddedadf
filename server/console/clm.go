package console

import "net/http"

// registerCLM adds the CLM's pages when the console has a CLM.
func (c *Console) registerCLM(mux *http.ServeMux) {}
