package clm_test

import (
	"slices"
	"strconv"
	"testing"

	"github.com/shekit/shekit/server/clm"
)

// TestContractErrorCodes: the error schemas of openapi/clm.yaml list, for each HTTP status, exactly
// the codes the error-code table gives that status.
func TestContractErrorCodes(t *testing.T) {
	spec := loadContract(t)
	want := map[int][]int{}
	for code, status := range clm.Codes() {
		want[status] = append(want[status], code)
	}
	for status, codes := range want {
		name := "Error" + strconv.Itoa(status)
		ref := spec.Doc.Components.Schemas[name]
		if ref == nil || ref.Value.Properties["errorcode"] == nil {
			t.Errorf("no schema %s with an errorcode", name)
			continue
		}
		var got []int
		for _, v := range ref.Value.Properties["errorcode"].Value.Enum {
			got = append(got, int(v.(float64)))
		}
		slices.Sort(got)
		slices.Sort(codes)
		if !slices.Equal(got, codes) {
			t.Errorf("%s lists %v; the table gives status %d to %v", name, got, status, codes)
		}
	}
}
