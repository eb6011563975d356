package datascript

import (
	"strings"

	"github.com/vigilhq/vigil/dataplane/spec"
)

// event is a DataScript event as a small number.
type event uint8

const (
	evReq event = iota
	evReqData
	evLBDone
	evLBFailed
	evResp
	evRespData
	evRespFailed
	numEvents
)

var eventNames = [numEvents]string{
	spec.EvtHTTPReq, spec.EvtHTTPReqData, spec.EvtHTTPLBDone, spec.EvtHTTPLBFailed,
	spec.EvtHTTPResp, spec.EvtHTTPRespData, spec.EvtHTTPRespFailed,
}

func eventOf(name string) (event, bool) {
	for i, n := range eventNames {
		if n == name {
			return event(i), true
		}
	}
	return 0, false
}

// shortEvent turns VS_DATASCRIPT_EVT_HTTP_REQ into HTTP_REQ.
func shortEvent(name string) string {
	return strings.TrimPrefix(name, "VS_DATASCRIPT_EVT_")
}

// evMask is a set of events in which a function may be called.
type evMask uint8

const (
	mReq        evMask = 1 << evReq
	mReqData    evMask = 1 << evReqData
	mLBDone     evMask = 1 << evLBDone
	mLBFailed   evMask = 1 << evLBFailed
	mResp       evMask = 1 << evResp
	mRespData   evMask = 1 << evRespData
	mRespFailed evMask = 1 << evRespFailed

	// mReqPhase: the request head is the current message and has not
	// been sent yet.
	mReqPhase = mReq | mReqData | mLBDone | mLBFailed
	// mRespPhase: the response head is the current message.
	mRespPhase = mResp | mRespData
	// mHTTP: every event with a request or response to read (Avi allows
	// none of avi.http.* but response, redirect and internal_status in
	// HTTP_RESP_FAILED).
	mHTTP = mReqPhase | mRespPhase
	mAll  = mHTTP | mRespFailed
)

// isResponse reports whether the current message of ev is the response.
func (ev event) isResponse() bool { return evMask(1<<ev)&(mRespPhase|mRespFailed) != 0 }
