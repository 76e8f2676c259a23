package emapi

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// IntentKind says which state a failover restores.
type IntentKind int

// Restore intents. Exactly one is sent per failover: Veeam's examples combine RestoreCurrent=true
// with a date, and which wins is undocumented.
const (
	IntentLatest      IntentKind = iota // latest crash-consistent state
	IntentLatestVSS                     // latest application-consistent (VSS) restore point
	IntentPointInTime                   // newest replicated state before Time
	IntentInterval                      // newest restore point of the interval containing Time
)

// String names the intent as the bot's store does.
func (k IntentKind) String() string {
	switch k {
	case IntentLatest:
		return "latest"
	case IntentLatestVSS:
		return "latest-vss"
	case IntentPointInTime:
		return "point-in-time"
	case IntentInterval:
		return "interval"
	}
	return "intent(" + strconv.Itoa(int(k)) + ")"
}

// RestoreIntent is what an approved failover restores. Time is used only for PointInTime and
// Interval and is sent in UTC with whole seconds.
type RestoreIntent struct {
	Kind IntentKind
	Time time.Time
}

// Validate rejects an unknown kind, a missing time for the dated intents, and a time on the
// latest intents (a time there means the caller confused two intents; EM would ignore it).
func (r RestoreIntent) Validate() error {
	switch r.Kind {
	case IntentLatest, IntentLatestVSS:
		if !r.Time.IsZero() {
			return fmt.Errorf("emapi: restore intent %s takes no time", r.Kind)
		}
	case IntentPointInTime, IntentInterval:
		if r.Time.IsZero() {
			return fmt.Errorf("emapi: restore intent %s needs a time", r.Kind)
		}
		if y := r.Time.UTC().Year(); y < 1 || y > 9999 {
			return fmt.Errorf("emapi: restore time year %d out of range", y)
		}
	default:
		return fmt.Errorf("emapi: unknown restore intent %d", int(r.Kind))
	}
	return nil
}

// emTimeLayout is the DateTime form the seeds use for request bodies: UTC, whole seconds, no zone
// suffix. Every time sent to EM is converted to UTC first.
const emTimeLayout = "2006-01-02T15:04:05"

// emNamespace is the namespace of every EM XML document.
const emNamespace = "http://www.veeam.com/ent/v1.0"

// Element names of CdpFailoverStartSpec, in the order EM's XML schema requires.
const (
	specRestoreCurrent    = "RestoreCurrent"
	specRestoreCurrentVss = "RestoreCurrentVss"
	specRestoreAtInterval = "RestoreAtInterval"
)

// Point-in-time element name. Both seed pages (VM and vApp failover) print
// "RestoreAtPointinTime" (lower-case "in") in their element table and "RestoreAtPointInTime" in
// their JSON example, and no public schema settles it. It matters more than a 400 would suggest:
// EM reads bodies with .NET's data-contract reader, which silently skips an element it does not
// know, so a misspelt point-in-time element turns the failover into one with no date at all.
// The spelling is therefore a setting (Config.PointInTimeElement, the bot's
// EM_POINT_IN_TIME_ELEMENT), used for XML and JSON alike; the default is the table's. The
// authority is the server's RestAPI.xsd in Enterprise Manager's schemas folder.
const (
	PointInTimeTable   = "RestoreAtPointinTime" // the seeds' element table: the default
	PointInTimeExample = "RestoreAtPointInTime" // the seeds' JSON examples
)

// ValidPointInTimeElement checks a configured point-in-time element name: an XML name of letters
// and digits starting "RestoreAt", so a typo in the setting cannot produce a broken body.
func ValidPointInTimeElement(name string) error {
	if !strings.HasPrefix(name, "RestoreAt") || len(name) > 64 {
		return fmt.Errorf("point-in-time element %q: want an element name such as %s or %s", truncate(name, 64), PointInTimeTable, PointInTimeExample)
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return fmt.Errorf("point-in-time element %q: letters and digits only", truncate(name, 64))
		}
	}
	return nil
}

// xmlSpecHeader is the prolog and root start tag exactly as Veeam's examples write them.
const xmlSpecHeader = `<?xml version="1.0" encoding="utf-8"?>` + "\n" +
	`<CdpFailoverStartSpec xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns="` + emNamespace + `">` + "\n"

// EncodeFailoverSpec returns the exact CdpFailoverStartSpec body for r. The bytes are fixed
// (written by hand, not by a marshaller whose output could change): XML in schema order with one
// space of indentation as in the seeds, or compact JSON with the same key order.
func EncodeFailoverSpec(r RestoreIntent, f Format) ([]byte, error) {
	return EncodeFailoverSpecWith(r, f, PointInTimeTable)
}

// EncodeFailoverSpecWith is EncodeFailoverSpec with the point-in-time element named pit.
func EncodeFailoverSpecWith(r RestoreIntent, f Format, pit string) ([]byte, error) {
	if err := r.Validate(); err != nil {
		return nil, err
	}
	if err := ValidPointInTimeElement(pit); err != nil {
		return nil, err
	}
	current, vss := false, false
	dateName, date := "", ""
	switch r.Kind {
	case IntentLatest:
		current = true
	case IntentLatestVSS:
		vss = true
	case IntentInterval:
		dateName, date = specRestoreAtInterval, r.Time.UTC().Format(emTimeLayout)
	case IntentPointInTime:
		dateName = pit
		date = r.Time.UTC().Format(emTimeLayout)
	}
	var b []byte
	switch f {
	case FormatXML:
		b = append(b, xmlSpecHeader...)
		b = xmlElem(b, specRestoreCurrent, strconv.FormatBool(current))
		b = xmlElem(b, specRestoreCurrentVss, strconv.FormatBool(vss))
		if dateName != "" {
			b = xmlElem(b, dateName, date)
		}
		b = append(b, "</CdpFailoverStartSpec>"...)
	case FormatJSON:
		b = append(b, `{"`+specRestoreCurrent+`":`...)
		b = strconv.AppendBool(b, current)
		b = append(b, `,"`+specRestoreCurrentVss+`":`...)
		b = strconv.AppendBool(b, vss)
		if dateName != "" {
			b = append(b, `,"`...)
			b = append(b, dateName...)
			b = append(b, `":"`...)
			b = append(b, date...)
			b = append(b, '"')
		}
		b = append(b, '}')
	default:
		return nil, fmt.Errorf("emapi: unknown format %d", int(f))
	}
	return b, nil
}

// encodeIntervalsSpec returns the CdpIntervalsSpec body asking for restore intervals in [from, to].
func encodeIntervalsSpec(from, to time.Time, f Format) ([]byte, error) {
	if from.IsZero() || to.IsZero() {
		return nil, errors.New("emapi: intervals need both a start and an end time")
	}
	if to.Before(from) {
		return nil, errors.New("emapi: intervals end before they start")
	}
	start, end := from.UTC().Format(emTimeLayout), to.UTC().Format(emTimeLayout)
	var b []byte
	switch f {
	case FormatXML:
		b = append(b, `<?xml version="1.0" encoding="utf-8"?>`+"\n"+`<CdpIntervalsSpec xmlns="`+emNamespace+`">`+"\n"...)
		b = xmlElem(b, "StartDate", start)
		b = xmlElem(b, "EndDate", end)
		b = append(b, "</CdpIntervalsSpec>"...)
	case FormatJSON:
		b = append(b, `{"StartDate":"`+start+`","EndDate":"`+end+`"}`...)
	default:
		return nil, fmt.Errorf("emapi: unknown format %d", int(f))
	}
	return b, nil
}

// xmlElem appends " <name>value</name>\n". Values are booleans and formatted times, which need no
// escaping.
func xmlElem(b []byte, name, value string) []byte {
	b = append(b, ' ', '<')
	b = append(b, name...)
	b = append(b, '>')
	b = append(b, value...)
	b = append(b, '<', '/')
	b = append(b, name...)
	return append(b, '>', '\n')
}
