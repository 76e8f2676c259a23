package emsim

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// specTimeLayout is the whole-second part of a DateTime in a request body, as the seed examples
// write it (2021-02-17T15:31:40). parseSpecTime also accepts it with a "Z" and with a fraction
// and a "Z" (2021-02-17T15:31:40.123Z); every form is UTC.
const specTimeLayout = "2006-01-02T15:04:05"

// specTimeForms is how a bad DateTime's 400 message describes the accepted forms.
const specTimeForms = "2021-02-17T15:31:40, 2021-02-17T15:31:40Z or 2021-02-17T15:31:40.123Z"

// The two spellings of the point-in-time element of CdpFailoverStartSpec. The seeds' element table
// spells it RestoreAtPointinTime and their JSON example RestoreAtPointInTime; no public schema
// settles which one EM's data contract uses. Config.PointInTimeElement picks the one the simulated
// server understands, for XML and JSON bodies alike (a real server has one contract for both).
const (
	// PointInTimeTableSpelling is the seeds' element-table spelling and the default.
	PointInTimeTableSpelling = "RestoreAtPointinTime"
	// PointInTimeExampleSpelling is the seeds' JSON-example spelling.
	PointInTimeExampleSpelling = "RestoreAtPointInTime"
)

// Element names of CdpFailoverStartSpec other than the point-in-time one.
const (
	elemRestoreCurrent    = "RestoreCurrent"
	elemRestoreCurrentVss = "RestoreCurrentVss"
	elemRestoreAtInterval = "RestoreAtInterval"
)

// nodeRootMissing is EM's answer when it reads a non-JSON body as JSON (it does so whenever Accept
// names application/json, even alongside XML).
const nodeRootMissing = "Node [root] does not exist"

// field describes one element of a flat request spec, in schema order.
type field struct {
	name     string
	required bool
	isTime   bool // DateTime, else Boolean
}

// failoverFields is CdpFailoverStartSpec in schema order, with the configured point-in-time name.
func (s *Server) failoverFields() []field {
	return []field{
		{elemRestoreCurrent, true, false},
		{elemRestoreCurrentVss, true, false},
		{elemRestoreAtInterval, false, true},
		{s.cfg.PointInTimeElement, false, true},
	}
}

var intervalsFields = []field{
	{"StartDate", true, true},
	{"EndDate", true, true},
}

// specValue is one decoded field.
type specValue struct {
	b bool
	t time.Time
}

// bodyIsJSON decides how to read a request body, like EM: a JSON body is honoured only when
// Accept is exactly application/json and Content-Type is application/json. When Accept names JSON
// at all, EM reads the body as JSON, so an XML body then fails with "Node [root] does not exist".
// Accept JSON with a non-JSON Content-Type is refused too (the simulator's choice: the contract is
// that JSON clients send both headers).
func bodyIsJSON(c *call) (isJSON bool, errMsg string) {
	accept := mediaTypes(c.r.Header.Get("Accept"))
	mentionsJSON := false
	for _, t := range accept {
		mentionsJSON = mentionsJSON || t == "application/json"
	}
	if !mentionsJSON {
		return false, ""
	}
	if len(accept) > 1 {
		return false, nodeRootMissing
	}
	ct := mediaTypes(c.r.Header.Get("Content-Type"))
	if len(ct) != 1 || ct[0] != "application/json" {
		return false, nodeRootMissing
	}
	return true, ""
}

// readSpec decodes a flat spec (root element, then fields in order) from the request body in
// the negotiated format; it answers 400 and returns false when the body is not acceptable. In
// lenient mode (Config.Lenient) unknown and out-of-order elements are skipped, see decodeXMLSpec.
func readSpec(c *call, root string, fields []field) (map[string]specValue, bool) {
	isJSON, msg := bodyIsJSON(c)
	if msg != "" {
		c.fail(http.StatusBadRequest, msg)
		return nil, false
	}
	var vals map[string]specValue
	var err error
	if isJSON {
		vals, err = decodeJSONSpec(c.body, fields, c.s.cfg.Lenient)
	} else {
		vals, err = decodeXMLSpec(c.body, root, fields, c.s.cfg.Lenient)
	}
	if err != nil {
		c.fail(http.StatusBadRequest, err.Error())
		return nil, false
	}
	return vals, true
}

// decodeXMLSpec reads body token by token so that root name, namespace, element order,
// duplicates, unknown elements, attributes and stray text are all checked, which xml.Unmarshal
// would silently tolerate.
//
// lenient reads like .NET's data-contract reader, which EM uses: it reads members in schema
// order, so an element that is unknown, in another namespace, a repeat, or out of order (one that
// belongs before an element already read) is skipped with its content; attributes are ignored;
// a member that is absent after that keeps its default (false, or the zero DateTime
// 0001-01-01T00:00:00). What stays a 400 in both modes: a document that is not well-formed XML, a
// wrong root element or root namespace, stray text, element content inside a value and a value
// that does not parse.
func decodeXMLSpec(body []byte, root string, fields []field, lenient bool) (map[string]specValue, error) {
	body = bytes.TrimPrefix(body, []byte(bom))
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, errors.New("Root element is missing.")
	}
	d := xml.NewDecoder(bytes.NewReader(body))
	d.Strict = true
	vals := map[string]specValue{}
	depth := 0
	pos := -1 // index in fields of the last element read
	cur := -1 // field being read, -1 between elements
	var text []byte
	seenRoot := false
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("The request body is not well-formed XML: %v", err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			switch depth {
			case 0:
				if seenRoot {
					return nil, errors.New("There are multiple root elements.")
				}
				seenRoot = true
				if t.Name.Local != root {
					return nil, fmt.Errorf("Unexpected root element <%s>: expected <%s>", t.Name.Local, root)
				}
				if t.Name.Space != Namespace {
					return nil, fmt.Errorf("Root element <%s> must be in namespace %q, got %q", root, Namespace, t.Name.Space)
				}
				for _, a := range t.Attr {
					if !lenient && a.Name.Space != "xmlns" && !(a.Name.Space == "" && a.Name.Local == "xmlns") {
						return nil, fmt.Errorf("Unexpected attribute %q on <%s>", a.Name.Local, root)
					}
				}
			case 1:
				idx := -1
				for i, f := range fields {
					if f.name == t.Name.Local && t.Name.Space == Namespace {
						idx = i
					}
				}
				if lenient && idx <= pos {
					// Unknown, repeated or out of order: the data-contract reader passes it by.
					if err := d.Skip(); err != nil {
						return nil, fmt.Errorf("The request body is not well-formed XML: %v", err)
					}
					continue
				}
				if idx < 0 {
					return nil, fmt.Errorf("Unexpected element <%s> in <%s>: allowed, in this order: %s", t.Name.Local, root, fieldNames(fields))
				}
				if idx == pos {
					return nil, fmt.Errorf("Element <%s> occurs more than once", t.Name.Local)
				}
				if idx < pos {
					return nil, fmt.Errorf("Element <%s> is out of order: it must come before <%s> (order: %s)", t.Name.Local, fields[pos].name, fieldNames(fields))
				}
				if len(t.Attr) > 0 && !lenient {
					return nil, fmt.Errorf("Unexpected attribute %q on <%s>", t.Attr[0].Name.Local, t.Name.Local)
				}
				pos, cur = idx, idx
				text = text[:0]
			default:
				return nil, fmt.Errorf("Unexpected element <%s> inside <%s>", t.Name.Local, fields[cur].name)
			}
			depth++
		case xml.EndElement:
			depth--
			if depth == 1 {
				v, err := parseValue(fields[cur], string(text))
				if err != nil {
					return nil, err
				}
				vals[fields[cur].name] = v
				cur = -1
			}
		case xml.CharData:
			switch {
			case depth == 2:
				text = append(text, t...)
			case len(bytes.TrimSpace(t)) == 0:
			case depth == 0:
				return nil, errors.New("Data at the root level is invalid.")
			default:
				return nil, fmt.Errorf("Unexpected text %q in <%s>", strings.TrimSpace(string(t)), root)
			}
		case xml.Directive:
			return nil, errors.New("DTDs are not allowed in request bodies")
		case xml.ProcInst, xml.Comment:
		}
	}
	if !seenRoot {
		return nil, errors.New("Root element is missing.")
	}
	if !lenient {
		for _, f := range fields {
			if _, ok := vals[f.name]; f.required && !ok {
				return nil, fmt.Errorf("Required element <%s> is missing from <%s>", f.name, root)
			}
		}
	}
	return vals, nil
}

// decodeJSONSpec reads a JSON object whose keys must match field names exactly (encoding/json
// alone would match them case-insensitively and accept duplicates). Booleans must be JSON
// booleans and dates JSON strings; key order is free in JSON.
//
// lenient skips unknown keys (a differently spelt or cased key is unknown) and repeats of a key
// (the first one counts), and lets an absent key keep its default, like the XML reader; a
// document that is not one JSON object and a value of the wrong type stay a 400.
func decodeJSONSpec(body []byte, fields []field, lenient bool) (map[string]specValue, error) {
	body = bytes.TrimPrefix(body, []byte(bom))
	d := json.NewDecoder(bytes.NewReader(body))
	d.UseNumber()
	if tok, err := d.Token(); err != nil || tok != json.Delim('{') {
		return nil, errors.New("The request body is not a JSON object")
	}
	vals := map[string]specValue{}
	for d.More() {
		tok, err := d.Token()
		if err != nil {
			return nil, fmt.Errorf("The request body is not valid JSON: %v", err)
		}
		key, _ := tok.(string)
		var f *field
		for i := range fields {
			if fields[i].name == key {
				f = &fields[i]
			}
		}
		_, dup := vals[key]
		var raw json.RawMessage
		if err := d.Decode(&raw); err != nil {
			return nil, fmt.Errorf("The request body is not valid JSON: %v", err)
		}
		switch {
		case lenient && (f == nil || dup):
			continue
		case f == nil:
			return nil, fmt.Errorf("Unexpected property %q: allowed: %s", key, fieldNames(fields))
		case dup:
			return nil, fmt.Errorf("Property %q occurs more than once", key)
		}
		var text string
		switch {
		case f.isTime:
			if err := json.Unmarshal(raw, &text); err != nil {
				return nil, fmt.Errorf("Property %q must be a string in the form %s, got %s", key, specTimeForms, raw)
			}
		default:
			if s := string(raw); s != "true" && s != "false" {
				return nil, fmt.Errorf("Property %q must be a JSON boolean, got %s", key, raw)
			}
			text = string(raw)
		}
		v, err := parseValue(*f, text)
		if err != nil {
			return nil, err
		}
		vals[key] = v
	}
	if _, err := d.Token(); err != nil {
		return nil, fmt.Errorf("The request body is not valid JSON: %v", err)
	}
	if _, err := d.Token(); err != io.EOF {
		return nil, errors.New("Unexpected data after the JSON object")
	}
	if !lenient {
		for _, f := range fields {
			if _, ok := vals[f.name]; f.required && !ok {
				return nil, fmt.Errorf("Required property %q is missing", f.name)
			}
		}
	}
	return vals, nil
}

// parseValue checks one field's text: xsd:boolean ("true", "false", "1", "0", surrounding white
// space allowed) or a UTC DateTime (see parseSpecTime).
func parseValue(f field, text string) (specValue, error) {
	s := strings.TrimSpace(text)
	if !f.isTime {
		switch s {
		case "true", "1":
			return specValue{b: true}, nil
		case "false", "0":
			return specValue{b: false}, nil
		}
		return specValue{}, fmt.Errorf("<%s> must be a boolean (true or false), got %q", f.name, s)
	}
	t, ok := parseSpecTime(s)
	if !ok {
		return specValue{}, fmt.Errorf("<%s> must be a UTC DateTime (%s), got %q", f.name, specTimeForms, s)
	}
	return specValue{t: t}, nil
}

// parseSpecTime reads a UTC DateTime in one of three forms: without a zone
// (2021-02-17T15:31:40, the seeds' form), with "Z" (2021-02-17T15:31:40Z), or with one to seven
// fractional digits (.NET's precision) and "Z" (2021-02-17T15:31:40.123Z). An offset, a fraction
// without "Z", a missing seconds field or a space for the "T" are refused: the contract is UTC.
func parseSpecTime(s string) (time.Time, bool) {
	rest, zulu := strings.CutSuffix(s, "Z")
	base, frac, hasFrac := strings.Cut(rest, ".")
	// time.Parse would accept a fractional second the layout does not mention; the length check
	// keeps the whole-second part exact and the fraction is read below.
	if len(base) != len(specTimeLayout) {
		return time.Time{}, false
	}
	t, err := time.Parse(specTimeLayout, base)
	if err != nil {
		return time.Time{}, false
	}
	if hasFrac {
		if !zulu || len(frac) == 0 || len(frac) > 7 || strings.Trim(frac, "0123456789") != "" {
			return time.Time{}, false
		}
		ns, _ := strconv.Atoi((frac + "000000000")[:9])
		t = t.Add(time.Duration(ns))
	}
	return t, true
}

func fieldNames(fields []field) string {
	names := make([]string, len(fields))
	for i, f := range fields {
		names[i] = f.name
	}
	return strings.Join(names, ", ")
}

// parseFailoverSpec decodes and validates a CdpFailoverStartSpec. It returns the intent the body
// states and the restore point the server uses. Strict mode wants exactly one intent and uses
// it. Lenient mode also refuses two intents (an ambiguous body is the client's bug either way),
// but when nothing is left after skipping (RestoreCurrent and RestoreCurrentVss false or absent,
// no date), the failover runs with whatever remains: the returned intent is empty and the server
// uses the latest restore point, as a data-contract reader with default values would.
func parseFailoverSpec(c *call) (asked, used Intent, ok bool) {
	pitName := c.s.cfg.PointInTimeElement
	vals, ok := readSpec(c, "CdpFailoverStartSpec", c.s.failoverFields())
	if !ok {
		return Intent{}, Intent{}, false
	}
	pit, hasPIT := vals[pitName]
	interval, hasInterval := vals[elemRestoreAtInterval]
	var intents []Intent
	if vals[elemRestoreCurrent].b {
		intents = append(intents, Intent{Kind: IntentLatest})
	}
	if vals[elemRestoreCurrentVss].b {
		intents = append(intents, Intent{Kind: IntentLatestVSS})
	}
	if hasInterval {
		intents = append(intents, Intent{Kind: IntentInterval, Time: interval.t})
	}
	if hasPIT {
		intents = append(intents, Intent{Kind: IntentPointInTime, Time: pit.t})
	}
	switch {
	case len(intents) == 1:
		return intents[0], intents[0], true
	case len(intents) == 0 && c.s.cfg.Lenient:
		return Intent{}, Intent{Kind: IntentLatest}, true
	case len(intents) == 0:
		c.fail(http.StatusBadRequest, "No restore point selected: set RestoreCurrent or RestoreCurrentVss to true, or give RestoreAtInterval or "+pitName)
	default:
		kinds := make([]string, len(intents))
		for i, in := range intents {
			kinds[i] = string(in.Kind)
		}
		c.fail(http.StatusBadRequest, "Ambiguous restore point: exactly one of RestoreCurrent=true, RestoreCurrentVss=true, RestoreAtInterval, "+pitName+" may be given, got "+strings.Join(kinds, " and "))
	}
	return Intent{}, Intent{}, false
}

// parseIntervalsSpec decodes a CdpIntervalsSpec (StartDate, EndDate; StartDate not after EndDate).
func parseIntervalsSpec(c *call) (from, to time.Time, ok bool) {
	vals, ok := readSpec(c, "CdpIntervalsSpec", intervalsFields)
	if !ok {
		return from, to, false
	}
	from, to = vals["StartDate"].t, vals["EndDate"].t
	if from.After(to) {
		c.fail(http.StatusBadRequest, "StartDate must not be after EndDate")
		return from, to, false
	}
	return from, to, true
}
