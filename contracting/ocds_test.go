package contracting_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"levee"
	"levee/contracting"
	"levee/market"
)

const ocdsSchemaBase = "https://standard.open-contracting.org/schema/1__1__5/"

var (
	ocdsOnce    sync.Once
	ocdsSchemas map[string]*jsonschema.Schema
	ocdsErr     error
)

// MustOCDSSchemas compiles the official release and record package schemas
// from testdata/ocds, each registered under its id URL so that no network
// is used.
func MustOCDSSchemas(t *testing.T) map[string]*jsonschema.Schema {
	t.Helper()
	ocdsOnce.Do(func() {
		c := jsonschema.NewCompiler()
		files, err := filepath.Glob(filepath.Join("testdata", "ocds", "*.json"))
		if err != nil || len(files) != 4 {
			ocdsErr = err
			if ocdsErr == nil {
				ocdsErr = os.ErrNotExist
			}
			return
		}
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				ocdsErr = err
				return
			}
			doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
			if err != nil {
				ocdsErr = err
				return
			}
			if err := c.AddResource(ocdsSchemaBase+filepath.Base(f), doc); err != nil {
				ocdsErr = err
				return
			}
		}
		ocdsSchemas = map[string]*jsonschema.Schema{}
		for _, name := range []string{"release-package-schema.json", "record-package-schema.json"} {
			s, err := c.Compile(ocdsSchemaBase + name)
			if err != nil {
				ocdsErr = err
				return
			}
			ocdsSchemas[name] = s
		}
	})
	if ocdsErr != nil {
		t.Fatalf("compile OCDS schemas: %v", ocdsErr)
	}
	return ocdsSchemas
}

// MustValidOCDS validates v (marshalled) against the named package schema
// and returns it decoded as generic JSON.
func MustValidOCDS(t *testing.T, schema string, v any) map[string]any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if err := MustOCDSSchemas(t)[schema].Validate(inst); err != nil {
		t.Fatalf("%s: %v\n%s", schema, err, b)
	}
	return inst.(map[string]any)
}

// checkBidsShape checks the bids extension's shape, which the core schema
// does not know: details[] each with an id, a status from the extension's
// codelist, tenderers (id, name) and a value (amount, currency).
func checkBidsShape(t *testing.T, release map[string]any) []map[string]any {
	t.Helper()
	bids, ok := release["bids"]
	if !ok {
		return nil
	}
	details, ok := bids.(map[string]any)["details"].([]any)
	if !ok {
		t.Fatalf("bids without details: %v", bids)
	}
	var out []map[string]any
	statuses := map[string]bool{"invited": true, "pending": true, "valid": true, "disqualified": true, "withdrawn": true}
	for _, d := range details {
		d := d.(map[string]any)
		if id, ok := d["id"].(string); !ok || id == "" {
			t.Errorf("bid without id: %v", d)
		}
		if s, _ := d["status"].(string); !statuses[s] {
			t.Errorf("bid status %v", d["status"])
		}
		if _, err := time.Parse(time.RFC3339Nano, d["date"].(string)); err != nil {
			t.Errorf("bid date %v", d["date"])
		}
		ts, _ := d["tenderers"].([]any)
		if len(ts) != 1 || ts[0].(map[string]any)["id"] == "" || ts[0].(map[string]any)["name"] == "" {
			t.Errorf("bid tenderers %v", d["tenderers"])
		}
		v, _ := d["value"].(map[string]any)
		if _, ok := v["amount"].(json.Number); !ok || v["currency"] != contracting.OCDSCurrency {
			t.Errorf("bid value %v", d["value"])
		}
		out = append(out, d)
	}
	return out
}

// exportOCDS exports the tender both ways, validates both packages and the
// bids shape of every release, and returns the release package and the
// compiled release as generic JSON, and the raw JSON of both.
func exportOCDS(t *testing.T, w *world, tenderID int64) (pkg, compiled map[string]any, raw string) {
	t.Helper()
	ctx := context.Background()
	rp, err := w.svc.OCDSReleasePackage(ctx, tenderID, "https://levee.example/api/v1/ocds/releases/1")
	if err != nil {
		t.Fatal(err)
	}
	rec, err := w.svc.OCDSRecordPackage(ctx, tenderID, "https://levee.example/api/v1/ocds/records/1")
	if err != nil {
		t.Fatal(err)
	}
	pkg = MustValidOCDS(t, "release-package-schema.json", rp)
	rpkg := MustValidOCDS(t, "record-package-schema.json", rec)
	ocid := contracting.OCID(tenderID)
	ids := map[string]bool{}
	var last time.Time
	for _, r := range pkg["releases"].([]any) {
		r := r.(map[string]any)
		if r["ocid"] != ocid || r["initiationType"] != "tender" {
			t.Errorf("release %v: ocid %v initiationType %v", r["id"], r["ocid"], r["initiationType"])
		}
		id := r["id"].(string)
		if ids[id] {
			t.Errorf("release id %s twice", id)
		}
		ids[id] = true
		at, _ := time.Parse(time.RFC3339Nano, r["date"].(string))
		if at.Before(last) {
			t.Errorf("releases out of date order at %s", id)
		}
		last = at
		checkBidsShape(t, r)
	}
	records := rpkg["records"].([]any)
	if len(records) != 1 {
		t.Fatalf("records: %v", records)
	}
	compiled = records[0].(map[string]any)["compiledRelease"].(map[string]any)
	checkBidsShape(t, compiled)
	b1, _ := json.Marshal(rp)
	b2, _ := json.Marshal(rec)
	return pkg, compiled, string(b1) + string(b2)
}

func ocdsPath(v any, keys ...any) any {
	for _, k := range keys {
		switch k := k.(type) {
		case string:
			m, _ := v.(map[string]any)
			v = m[k]
		case int:
			l, _ := v.([]any)
			if k >= len(l) {
				return nil
			}
			v = l[k]
		}
	}
	return v
}

func TestOCDSExportThroughTheFlow(t *testing.T) {
	w := MustWorld(t)
	ctx := context.Background()
	tv := w.tender(t)
	title := "Dyke repair, north"
	if _, err := w.svc.EditTender(ctx, w.treasurer.AccountID, tv.ID, contracting.TenderEdit{Title: &title, Reason: "clearer title"}); err != nil {
		t.Fatal(err)
	}
	a := w.bid(t, tv, 0, "100")
	w.bid(t, tv, 1, "123.456789")
	w.bid(t, tv, 2, "120")

	// Bidding: the export says nothing about bids or bidders.
	pkg, compiled, raw := exportOCDS(t, w, tv.ID)
	for _, secret := range []string{"dykeworks", "polderco", "sluiceltd", "123.456789", `"bids"`, `"tenderers"`, "tenderer", "numberOfTenderers"} {
		if strings.Contains(raw, secret) {
			t.Fatalf("sealed bid data %q in the export before close:\n%s", secret, raw)
		}
	}
	if got := pkg["releases"].([]any); len(got) != 2 || ocdsPath(got[1], "tag", 0) != "tenderAmendment" {
		t.Fatalf("releases while bidding: %v", got)
	}
	if compiled["ocid"] != contracting.OCIDPrefix+strconv.FormatInt(tv.ID, 10) || ocdsPath(compiled, "tender", "title") != title ||
		ocdsPath(compiled, "tender", "status") != "active" || ocdsPath(compiled, "tender", "value", "currency") != "XXX" ||
		ocdsPath(compiled, "tender", "value", "amount") != json.Number("150.000000") ||
		ocdsPath(compiled, "tender", "tenderPeriod", "endDate") != tv.ClosesAt.UTC().Format(time.RFC3339Nano) ||
		ocdsPath(compiled, "buyer", "id") != contracting.OCDSBuyerID || len(ocdsPath(compiled, "tender", "milestones").([]any)) != 2 {
		t.Fatalf("compiled while bidding: %v", compiled)
	}

	// After the window closes (before close-bids and after it): every
	// active bid, as the sealed read shows it to anyone.
	w.clock.Add(time.Hour)
	_, compiled, raw = exportOCDS(t, w, tv.ID)
	if !strings.Contains(raw, "123.456789") || len(checkBidsShape(t, compiled)) != 3 {
		t.Fatalf("bids after close: %v", compiled["bids"])
	}
	if _, err := w.svc.CloseBids(ctx, w.treasurer.AccountID, tv.ID); err != nil {
		t.Fatal(err)
	}
	_, compiled, _ = exportOCDS(t, w, tv.ID)
	bids := checkBidsShape(t, compiled)
	if len(bids) != 3 || ocdsPath(compiled, "tender", "numberOfTenderers") != json.Number("3") || len(compiled["parties"].([]any)) != 4 {
		t.Fatalf("after close-bids: %v", compiled)
	}
	if f := bids[0]["forecast"].(map[string]any); f["market"] == "" || f["yesPrice"] != json.Number("0.500000") {
		t.Fatalf("forecast while trading: %v", f)
	}
	bs, _ := w.svc.Bids(ctx, nil, tv.ID)
	if _, err := w.eng.Submit(ctx, w.residents[0].AccountID, *bs[0].MarketID, market.Order{Outcome: 0, Side: market.Buy, Amount: levee.Units(5)}, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := w.eng.Submit(ctx, w.residents[1].AccountID, *bs[1].MarketID, market.Order{Outcome: 1, Side: market.Buy, Amount: levee.Units(5)}, ""); err != nil {
		t.Fatal(err)
	}

	// Awarded: the award, the contract and the published forecasts.
	w.clock.Add(10 * time.Hour)
	awarded, err := w.svc.Award(ctx, w.treasurer.AccountID, tv.ID)
	if err != nil || awarded.Contract == nil {
		t.Fatalf("award: %v %+v", err, awarded)
	}
	pkg, compiled, _ = exportOCDS(t, w, tv.ID)
	award := ocdsPath(compiled, "awards", 0).(map[string]any)
	contract := ocdsPath(compiled, "contracts", 0).(map[string]any)
	if award["status"] != "active" || ocdsPath(award, "value", "amount") != json.Number("100.000000") ||
		ocdsPath(award, "suppliers", 0, "name") != "dykeworks" || ocdsPath(award, "relatedBids", 0) != strconv.FormatInt(a.ID, 10) {
		t.Fatalf("award: %v", award)
	}
	if contract["awardID"] != award["id"] || contract["id"] != strconv.FormatInt(*awarded.Contract, 10) || contract["status"] != "active" ||
		ocdsPath(contract, "value", "amount") != json.Number("100.000000") || ocdsPath(contract, "period", "endDate") == nil {
		t.Fatalf("contract: %v", contract)
	}
	if ocdsPath(compiled, "tender", "status") != "complete" {
		t.Fatalf("tender status %v", ocdsPath(compiled, "tender", "status"))
	}
	for i, b := range checkBidsShape(t, compiled) {
		f := b["forecast"].(map[string]any)
		if f["twap"] == nil || f["qualifies"] != (i != 1) {
			t.Errorf("bid %d forecast %v", i, f)
		}
	}
	n := len(pkg["releases"].([]any))

	// A milestone paid: one transaction from the city to the contractor.
	if _, err := w.svc.Claim(ctx, w.orgs[0], *awarded.Contract, 1, "foundations done"); err != nil {
		t.Fatal(err)
	}
	w.clock.Add(25 * time.Hour)
	pkg, compiled, _ = exportOCDS(t, w, tv.ID)
	txs := ocdsPath(compiled, "contracts", 0, "implementation", "transactions").([]any)
	if len(txs) != 1 {
		t.Fatalf("transactions: %v", txs)
	}
	tx := txs[0].(map[string]any)
	if ocdsPath(tx, "value", "amount") != json.Number("25.000000") || ocdsPath(tx, "payer", "id") != contracting.OCDSBuyerID ||
		ocdsPath(tx, "payee", "name") != "dykeworks" || tx["date"] == nil || tx["id"] == "" {
		t.Fatalf("transaction: %v", tx)
	}
	if ocdsPath(compiled, "contracts", 0, "implementation", "milestones", 0, "status") != "met" {
		t.Fatalf("milestones: %v", ocdsPath(compiled, "contracts", 0, "implementation", "milestones"))
	}
	rs := pkg["releases"].([]any)
	if len(rs) != n+1 || ocdsPath(rs[n], "tag", 0) != "implementation" {
		t.Fatalf("releases after payment: %d, want %d", len(rs), n+1)
	}
}

// TestOCDSSchemasRejectBadPackages makes sure the compiled schemas do check:
// a release without its ocid, or with a status outside the codelist, fails.
func TestOCDSSchemasRejectBadPackages(t *testing.T) {
	good := `{"uri":"https://levee.example/x","version":"1.1","publishedDate":"2027-01-01T00:00:00Z","publisher":{"name":"Levee"},
		"releases":[{"ocid":"ocds-levee-1","id":"r1","date":"2027-01-01T00:00:00Z","tag":["tender"],"initiationType":"tender",
		"tender":{"id":"1","status":"active"}}]}`
	for name, doc := range map[string]string{
		"good":           good,
		"no ocid":        strings.Replace(good, `"ocid":"ocds-levee-1",`, "", 1),
		"bad status":     strings.Replace(good, `"status":"active"`, `"status":"forecasting"`, 1),
		"bad initiation": strings.Replace(good, `"initiationType":"tender"`, `"initiationType":"market"`, 1),
	} {
		inst, err := jsonschema.UnmarshalJSON(strings.NewReader(doc))
		if err != nil {
			t.Fatal(err)
		}
		err = MustOCDSSchemas(t)["release-package-schema.json"].Validate(inst)
		if (name == "good") != (err == nil) {
			t.Errorf("%s: %v", name, err)
		}
	}
}
