package oauthtest

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// verifyBufBytes is the read size of VerifyContent.
const verifyBufBytes = 32 << 10

// ContentMessageID is the test-only message ID whose content
// (GET /v2/bot/message/{messageId}/content) is n bytes of the content
// pattern: "bytes-<n>". n may be 0 to 1 GiB.
func ContentMessageID(n int64) string { return contentIDPrefix + strconv.FormatInt(n, 10) }

// ContentByte is byte i (from 0) of every content the server answers:
// i modulo 251, a prime, so a chunk lost, repeated or misplaced shows.
func ContentByte(i int64) byte { return byte(i % contentPeriod) }

// VerifyContent reads r to its end and checks that it is exactly n bytes
// of the content pattern ([ContentByte]); it holds 64 KiB at most.
func VerifyContent(r io.Reader, n int64) error {
	buf := make([]byte, verifyBufBytes)
	pattern := contentPattern(verifyBufBytes + contentPeriod)
	var off int64
	for {
		k, err := r.Read(buf)
		if off+int64(k) > n {
			return fmt.Errorf("oauthtest: content is longer than %d bytes", n)
		}
		start := int(off % contentPeriod)
		if got := buf[:k]; !bytes.Equal(got, pattern[start:start+k]) {
			for i := range got {
				if got[i] != ContentByte(off+int64(i)) {
					return fmt.Errorf("oauthtest: content byte %d is %#x, want %#x", off+int64(i), got[i], ContentByte(off+int64(i)))
				}
			}
		}
		off += int64(k)
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("oauthtest: reading content after %d bytes: %w", off, err)
		}
	}
	if off != n {
		return fmt.Errorf("oauthtest: content is %d bytes, want %d", off, n)
	}
	return nil
}

// contentPattern is the first n bytes of the content pattern.
func contentPattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = ContentByte(int64(i))
	}
	return b
}

// contentChunk is what one write of content writes: whole periods of
// the pattern, so consecutive writes continue it.
func contentChunk() []byte { return contentPattern(contentPeriod * contentChunkPeriods) }

// contentSize parses the test-only message ID bytes-<N>.
func contentSize(messageID string) (int64, bool) {
	digits, found := strings.CutPrefix(messageID, contentIDPrefix)
	if !found || !isDigits(digits) || len(digits) > maxContentDigits {
		return 0, false
	}
	n, err := strconv.ParseInt(digits, 10, 64)
	if err != nil || n > maxContentBytes {
		return 0, false
	}
	return n, true
}

// content answers GET /v2/bot/message/{messageId}/content: N bytes for
// bytes-<N>, streamed from one fixed chunk; 404 for any other ID.
func (s *Server) content(path string) response {
	params, _ := matchPath(path, "/v2/bot/message/{}/content")
	n, found := contentSize(params[0])
	if !found {
		return messageError(http.StatusNotFound, msgNotFound)
	}
	return response{status: http.StatusOK, contentType: contentTypeOctets, length: n,
		stream: func(w io.Writer) {
			for left := n; left > 0; {
				chunk := s.chunk[:min(int64(len(s.chunk)), left)]
				if _, err := w.Write(chunk); err != nil {
					return // the client left
				}
				left -= int64(len(chunk))
			}
		}}
}
