package console

import (
	"fmt"
	"html/template"
)

// funcs are the templates' functions.
var funcs = template.FuncMap{
	"keyIDs":            func() []string { return keyIDs },
	"provisioningTypes": func() []string { return provisioningTypes },
	"deref": func(n *int64) string {
		if n == nil {
			return ""
		}
		return fmt.Sprint(*n)
	},
	"ms": func(f float64) string { return fmt.Sprintf("%.2f ms", f) },
}

// plural writes n and a noun, with an s unless n is 1.
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
