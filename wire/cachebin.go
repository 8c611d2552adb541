package wire

import (
	"encoding/binary"
	"fmt"
	"slices"
)

// Binary cache frames (extension flag FlagBinaryCache, capability
// CapCacheBin). One frame holds one request or one reply. Every body starts
// with a u8 op and a u64 request id (big-endian, as every binary layout):
//
//	get   0x01: name tenant | name namespace | name cache | name key
//	put   0x02: name tenant | name namespace | name cache | name key |
//	            u8 options | [u64 ttl_ms] | [u64 if_version] | u32 len | value
//	value 0x81: u64 version | u32 len | value      (a hit; len may be 0)
//	miss  0x82: (nothing)
//	ok    0x83: u64 version
//
// A name is u16 length + UTF-8, as in the publish batch. The put options are
// bit 0x01 (ttl_ms follows), 0x02 (if_absent) and 0x04 (if_version follows);
// the u64 fields appear in that order, only when their bit is set. Requests
// (0x01, 0x02) go client to broker, replies (0x8x) broker to client. A
// failed request is answered with the JSON reply a JSON request with a
// request_id gets (error or cache_error), so replies stay first in, first
// out whatever their encoding.

// CacheBinOp is the first byte of a binary cache frame.
type CacheBinOp uint8

// Binary cache ops.
const (
	CacheBinGet   CacheBinOp = 0x01
	CacheBinPut   CacheBinOp = 0x02
	CacheBinValue CacheBinOp = 0x81
	CacheBinMiss  CacheBinOp = 0x82
	CacheBinOK    CacheBinOp = 0x83
)

// Put option bits.
const (
	cachePutTTL       = 0x01
	cachePutIfAbsent  = 0x02
	cachePutIfVersion = 0x04
	cachePutKnown     = cachePutTTL | cachePutIfAbsent | cachePutIfVersion
)

// cacheBinPrefix is the op and the request id.
const cacheBinPrefix = 1 + 8

// CacheBinRequest is a decoded binary cache request. The byte fields alias
// the decoded payload (no copies): a caller that keeps one past the frame
// must copy it.
type CacheBinRequest struct {
	Op                              CacheBinOp // CacheBinGet or CacheBinPut
	RequestID                       uint64
	TenantID, Namespace, Cache, Key []byte // valid UTF-8

	// Put only.
	Value        []byte
	HasTTL       bool
	TTLMs        uint64
	IfAbsent     bool
	HasIfVersion bool
	IfVersion    uint64
}

// CacheBinReply is a decoded binary cache reply. Value aliases the decoded
// payload; it is non-nil (possibly empty) for CacheBinValue and nil
// otherwise.
type CacheBinReply struct {
	Op        CacheBinOp // CacheBinValue, CacheBinMiss or CacheBinOK
	RequestID uint64
	Version   uint64 // CacheBinValue and CacheBinOK
	Value     []byte
}

// appendCacheBinPrefix appends the header (length patched later by
// putLength), the op and the request id.
func appendCacheBinPrefix(dst []byte, op CacheBinOp, id uint64) []byte {
	dst = AppendHeader(dst, FlagBinaryCache, 0)
	dst = append(dst, byte(op))
	return binary.BigEndian.AppendUint64(dst, id)
}

func appendCacheScope(dst []byte, tenant, ns, cache, key string) ([]byte, error) {
	return appendNames(dst, "tenant_id", tenant, "namespace", ns, "cache", cache, "key", key)
}

func appendValue(dst []byte, v []byte) ([]byte, error) {
	if uint64(len(v)) > 0xFFFFFFFF {
		return dst, fmt.Errorf("encode cache value: %w", ErrFieldTooLong)
	}
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(v)))
	return append(dst, v...), nil
}

// AppendCacheBinGetFrame appends a binary cache get (op 0x01). It allocates
// only if dst lacks capacity; on error dst is returned unchanged.
func AppendCacheBinGetFrame(dst []byte, requestID uint64, tenant, ns, cache, key string) ([]byte, error) {
	at := len(dst)
	dst = slices.Grow(dst, HeaderSize+cacheBinPrefix+8+len(tenant)+len(ns)+len(cache)+len(key))
	out := appendCacheBinPrefix(dst, CacheBinGet, requestID)
	out, err := appendCacheScope(out, tenant, ns, cache, key)
	if err != nil {
		return dst[:at], err
	}
	putLength(out, at)
	return out, nil
}

// AppendCacheBinPutFrame appends a binary cache put (op 0x02) of m's scope,
// value, TTLMs, IfAbsent and IfVersion under requestID (m.RequestID is not
// used). It allocates only if dst lacks capacity; on error dst is returned
// unchanged.
func AppendCacheBinPutFrame(dst []byte, requestID uint64, m *CachePut) ([]byte, error) {
	at := len(dst)
	dst = slices.Grow(dst, HeaderSize+cacheBinPrefix+8+len(m.TenantID)+len(m.Namespace)+len(m.Cache)+len(m.Key)+1+16+4+len(m.Value))
	out := appendCacheBinPrefix(dst, CacheBinPut, requestID)
	out, err := appendCacheScope(out, m.TenantID, m.Namespace, m.Cache, m.Key)
	if err != nil {
		return dst[:at], err
	}
	var opts byte
	if m.TTLMs != nil {
		opts |= cachePutTTL
	}
	if m.IfAbsent {
		opts |= cachePutIfAbsent
	}
	if m.IfVersion != nil {
		opts |= cachePutIfVersion
	}
	out = append(out, opts)
	if m.TTLMs != nil {
		out = binary.BigEndian.AppendUint64(out, *m.TTLMs)
	}
	if m.IfVersion != nil {
		out = binary.BigEndian.AppendUint64(out, *m.IfVersion)
	}
	if out, err = appendValue(out, m.Value); err != nil {
		return dst[:at], err
	}
	putLength(out, at)
	return out, nil
}

// AppendCacheBinValueFrame appends a hit (op 0x81): the entry's version and
// value.
func AppendCacheBinValueFrame(dst []byte, requestID, version uint64, value []byte) []byte {
	at := len(dst)
	dst = slices.Grow(dst, HeaderSize+cacheBinPrefix+8+4+len(value))
	dst = appendCacheBinPrefix(dst, CacheBinValue, requestID)
	dst = binary.BigEndian.AppendUint64(dst, version)
	dst, _ = appendValue(dst, value) // a stored value fits a u32 (frames are smaller)
	putLength(dst, at)
	return dst
}

// AppendCacheBinMissFrame appends a miss (op 0x82).
func AppendCacheBinMissFrame(dst []byte, requestID uint64) []byte {
	at := len(dst)
	dst = appendCacheBinPrefix(dst, CacheBinMiss, requestID)
	putLength(dst, at)
	return dst
}

// AppendCacheBinOKFrame appends a stored put (op 0x83) with the entry's new
// version.
func AppendCacheBinOKFrame(dst []byte, requestID, version uint64) []byte {
	at := len(dst)
	dst = appendCacheBinPrefix(dst, CacheBinOK, requestID)
	dst = binary.BigEndian.AppendUint64(dst, version)
	putLength(dst, at)
	return dst
}

func (c *cursor) cacheBinPrefix() (CacheBinOp, uint64, error) {
	op, err := c.u8()
	if err != nil {
		return 0, 0, err
	}
	id, err := c.u64()
	return CacheBinOp(op), id, err
}

func (c *cursor) value() ([]byte, error) {
	n, err := c.u32()
	if err != nil {
		return nil, err
	}
	return c.bytes(int(n))
}

// DecodeCacheBinRequest decodes a FlagBinaryCache payload sent by a client
// (get or put) into out. Reply ops, unknown ops, unknown option bits, short
// bodies and trailing bytes are *DecodeError.
func DecodeCacheBinRequest(payload []byte, out *CacheBinRequest) error {
	*out = CacheBinRequest{}
	c := cursor{b: payload, what: "binary cache request"}
	op, id, err := c.cacheBinPrefix()
	if err != nil {
		return err
	}
	if op != CacheBinGet && op != CacheBinPut {
		return decodeErr(c.what, 0, ErrUnknownCacheOp, fmt.Sprintf("op %#02x", byte(op)))
	}
	out.Op, out.RequestID = op, id
	for _, n := range [...]struct {
		field string
		dst   *[]byte
	}{{"tenant_id", &out.TenantID}, {"namespace", &out.Namespace}, {"cache", &out.Cache}, {"key", &out.Key}} {
		if *n.dst, err = c.nameBytes(n.field); err != nil {
			return err
		}
	}
	if op == CacheBinPut {
		if err := c.putFields(out); err != nil {
			return err
		}
	}
	return c.end()
}

func (c *cursor) putFields(out *CacheBinRequest) error {
	opts, err := c.u8()
	if err != nil {
		return err
	}
	if opts&^cachePutKnown != 0 {
		return c.fail(ErrUnknownOptions, fmt.Sprintf("options %#02x", opts))
	}
	out.HasTTL = opts&cachePutTTL != 0
	out.IfAbsent = opts&cachePutIfAbsent != 0
	out.HasIfVersion = opts&cachePutIfVersion != 0
	if out.HasTTL {
		if out.TTLMs, err = c.u64(); err != nil {
			return err
		}
	}
	if out.HasIfVersion {
		if out.IfVersion, err = c.u64(); err != nil {
			return err
		}
	}
	out.Value, err = c.value()
	return err
}

// DecodeCacheBinReply decodes a FlagBinaryCache payload sent by a broker
// (value, miss or ok) into out. Request ops, unknown ops, short bodies and
// trailing bytes are *DecodeError.
func DecodeCacheBinReply(payload []byte, out *CacheBinReply) error {
	*out = CacheBinReply{}
	c := cursor{b: payload, what: "binary cache reply"}
	op, id, err := c.cacheBinPrefix()
	if err != nil {
		return err
	}
	out.Op, out.RequestID = op, id
	switch op {
	case CacheBinValue:
		if out.Version, err = c.u64(); err != nil {
			return err
		}
		if out.Value, err = c.value(); err != nil {
			return err
		}
	case CacheBinOK:
		if out.Version, err = c.u64(); err != nil {
			return err
		}
	case CacheBinMiss:
	default:
		return decodeErr(c.what, 0, ErrUnknownCacheOp, fmt.Sprintf("op %#02x", byte(op)))
	}
	return c.end()
}
