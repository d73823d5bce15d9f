package web

import "testing"

// TestLocalPathStaysOnSite feeds the sign-in page's ?next= the ways browsers
// are known to leave a site from a string that starts with one slash.
func TestLocalPathStaysOnSite(t *testing.T) {
	for _, tc := range []struct{ next, want string }{
		{"/markets/12", "/markets/12"},
		{"/jury?case=3#ballot", "/jury?case=3#ballot"},
		{"/", "/"},
		{"", "/markets"},
		{"markets", "/markets"},
		{"//evil.example", "/markets"},
		{"///evil.example", "/markets"},
		{"/\\evil.example", "/markets"},
		{"\\\\evil.example", "/markets"},
		{"/\t/evil.example", "/markets"},
		{"/\n/evil.example", "/markets"},
		{"/\r/evil.example", "/markets"},
		{"/ /evil.example", "/markets"},
		{"/\x00/evil.example", "/markets"},
		{"/\u00a0/evil.example", "/markets"},
		{"/%2F/evil.example", "/markets"},
		{"/%2f%2fevil.example", "/markets"},
		{"/%09/evil.example", "/markets"},
		{"/%5Cevil.example", "/markets"},
		{"https://evil.example/", "/markets"},
		{"http:/evil.example", "/markets"},
		{"javascript:alert(1)", "/markets"},
		{"//user@evil.example", "/markets"},
		{"/%", "/markets"},
	} {
		t.Run(tc.next, func(t *testing.T) {
			if got := localPath(tc.next); got != tc.want {
				t.Errorf("localPath(%q) = %q, want %q", tc.next, got, tc.want)
			}
		})
	}
}
