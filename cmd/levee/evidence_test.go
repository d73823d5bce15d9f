package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http"
	"strings"
	"testing"
)

// pngBytes is a tiny valid PNG header followed by padding: enough for type
// detection, which is all the server trusts.
var pngBytes = append([]byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"), bytes.Repeat([]byte{7}, 2000)...)

// upload sends one file as multipart/form-data in the field "file".
func upload(t *testing.T, c *client, path, name string, data []byte) (int, map[string]any) {
	t.Helper()
	var body bytes.Buffer
	w := multipart.NewWriter(&body)
	fw, _ := w.CreateFormFile("file", name)
	fw.Write(data)
	w.Close()
	req, _ := http.NewRequest("POST", c.base+path, &body)
	req.Header.Set("Content-Type", w.FormDataContentType())
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

// checkEvidenceUploads attaches evidence to milestone 1 of a contract as its
// contractor, and checks what others and bad files get.
func checkEvidenceUploads(t *testing.T, contractor, rival, anon *client, cpath string) {
	t.Helper()
	path := cpath + "/milestones/1/evidence"
	for _, tc := range []struct {
		who    *client
		name   string
		data   []byte
		status int
	}{
		{rival, "photo.png", pngBytes, 403},
		{anon, "photo.png", pngBytes, 401},
		{contractor, "page.html", []byte("<html><script>alert(1)</script></html>"), 400},
		{contractor, "run.exe", []byte("MZ\x90\x00\x03\x00\x00\x00\x04\x00"), 400},
		{contractor, "empty.txt", nil, 400},
		{contractor, "huge.png", append(append([]byte{}, pngBytes...), make([]byte, 6<<20)...), 413},
		{contractor, "milestone99.png", pngBytes, 201}, // checked below against another milestone
	} {
		p := path
		if tc.name == "milestone99.png" {
			p = strings.Replace(path, "/milestones/1/", "/milestones/99/", 1)
			tc.status = 404
		}
		if st, r := upload(t, tc.who, p, tc.name, tc.data); st != tc.status {
			t.Fatalf("upload %s: %d %v, want %d", tc.name, st, r, tc.status)
		}
	}
	st, f := upload(t, contractor, path, "../../etc/foundations.png", pngBytes)
	if st != 201 || f["name"] != "foundations.png" || f["content_type"] != "image/png" {
		t.Fatalf("upload: %d %v", st, f)
	}
	sum := sha256.Sum256(pngBytes)
	if f["sha256"] != hex.EncodeToString(sum[:]) {
		t.Fatalf("sha256 %v", f["sha256"])
	}
	_, list := anon.do("GET", path, "")
	if files, _ := list["files"].([]any); len(files) != 1 {
		t.Fatalf("evidence list: %v", list)
	}
	resp, err := http.Get(anon.base + f["url"].(string))
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !bytes.Equal(got, pngBytes) || resp.Header.Get("Content-Type") != "image/png" ||
		!strings.HasPrefix(resp.Header.Get("Content-Disposition"), "attachment") {
		t.Fatalf("download: %d bytes, %v", len(got), resp.Header)
	}
}

// checkSealedAttachment attaches a file to a sealed bid as its bidder and
// checks that nobody else can list or download it; it returns its URL.
func checkSealedAttachment(t *testing.T, bidder *client, bidID string, others []*client) string {
	t.Helper()
	st, a := upload(t, bidder, "/api/v1/bids/"+bidID+"/attachments", "drawings.pdf", []byte("%PDF-1.7\nsecret drawings"))
	if st != 201 || a["content_type"] != "application/pdf" {
		t.Fatalf("attach to own bid: %d %v", st, a)
	}
	url := a["url"].(string)
	if st, _ := upload(t, others[0], "/api/v1/bids/"+bidID+"/attachments", "x.png", pngBytes); st != 404 {
		t.Fatalf("a rival attached to a sealed bid: %d", st)
	}
	for _, c := range others {
		if st, _ := c.do("GET", "/api/v1/bids/"+bidID+"/attachments", ""); st != 404 {
			t.Fatalf("someone listed a sealed bid's attachments: %d", st)
		}
		req, _ := http.NewRequest("GET", c.base+url, nil)
		if c.token != "" {
			req.Header.Set("Authorization", "Bearer "+c.token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 404 || bytes.Contains(body, []byte("secret")) {
			t.Fatalf("someone downloaded a sealed attachment: %d %q", resp.StatusCode, body)
		}
	}
	if _, l := bidder.do("GET", "/api/v1/bids/"+bidID+"/attachments", ""); len(l["files"].([]any)) != 1 {
		t.Fatalf("bidder's own attachments: %v", l)
	}
	return url
}
