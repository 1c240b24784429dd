package redis

import "github.com/ticketd/ticketing/infra/readstore/viewcodec"

// The stored form of the views is shared with the other read store
// adapters (package viewcodec); a change of it bumps this adapter's format
// too.
var (
	encodeEvent   = viewcodec.EncodeEvent
	decodeEvent   = viewcodec.DecodeEvent
	encodeHold    = viewcodec.EncodeHold
	decodeHold    = viewcodec.DecodeHold
	encodeBooking = viewcodec.EncodeBooking
	decodeBooking = viewcodec.DecodeBooking
	encodePayment = viewcodec.EncodePayment
	decodePayment = viewcodec.DecodePayment
	encodeProfile = viewcodec.EncodeProfile
	decodeProfile = viewcodec.DecodeProfile
)
