// Package report turns a Ginkgo v2 suite report into results.yaml (for tools) and report.html
// (for people), with secrets redacted. It is meant to be called from a ReportAfterSuite node:
//
//	var _ = ReportAfterSuite("conformance report", func(r types.Report) {
//		red := report.NewRedactor(secrets, []string{"KeyID"})
//		res := report.Build(r, []string{"kms", "clm", "ecu", "e2e", "vectors"}, sectionOf, config, red)
//		Expect(report.Write(dir, res)).To(Succeed())
//	})
package report
