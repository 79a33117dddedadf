package vcan

import (
	"bufio"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"go.einride.tech/can"
)

// LogLine is one line of a candump log: "(seconds.micros) iface ID#DATA".
type LogLine struct {
	Time      time.Duration // since the epoch, or since the capture started
	Interface string
	Frame     can.Frame
}

// FormatLogLine writes l in candump's log format (candump -l, read by canplayer): the ID as 3 hex
// digits for 11-bit and 8 for 29-bit frames, the data in uppercase hex, R for a remote frame.
func FormatLogLine(l LogLine) string {
	var b strings.Builder
	us := l.Time.Microseconds()
	fmt.Fprintf(&b, "(%d.%06d) %s ", us/1e6, us%1e6, l.Interface)
	if l.Frame.IsExtended {
		fmt.Fprintf(&b, "%08X#", l.Frame.ID)
	} else {
		fmt.Fprintf(&b, "%03X#", l.Frame.ID)
	}
	if l.Frame.IsRemote {
		b.WriteString("R")
		if l.Frame.Length > 0 {
			b.WriteString(strconv.Itoa(int(l.Frame.Length)))
		}
	} else {
		b.WriteString(strings.ToUpper(hex.EncodeToString(l.Frame.Data[:l.Frame.Length])))
	}
	return b.String()
}

// ParseLogLine reads one line of a candump log. It accepts what FormatLogLine writes and what
// candump -l writes for classic CAN frames.
func ParseLogLine(s string) (LogLine, error) {
	var l LogLine
	fields := strings.Fields(s)
	if len(fields) < 3 {
		return l, fmt.Errorf("vcan: log line %q: want (time) iface ID#DATA", s)
	}
	ts := fields[0]
	if len(ts) < 3 || ts[0] != '(' || ts[len(ts)-1] != ')' {
		return l, fmt.Errorf("vcan: log line %q: time not in parentheses", s)
	}
	secs, frac, ok := strings.Cut(ts[1:len(ts)-1], ".")
	sec, err1 := strconv.ParseUint(secs, 10, 63)
	us, err2 := strconv.ParseUint(frac, 10, 32)
	if !ok || err1 != nil || err2 != nil || len(frac) != 6 || sec > uint64(time.Duration(1<<63-1)/time.Second)-1 {
		return l, fmt.Errorf("vcan: log line %q: bad time %s", s, ts)
	}
	l.Time = time.Duration(sec)*time.Second + time.Duration(us)*time.Microsecond
	l.Interface = fields[1]
	id, data, ok := strings.Cut(fields[2], "#")
	if !ok {
		return l, fmt.Errorf("vcan: log line %q: no # in %s", s, fields[2])
	}
	if strings.HasPrefix(data, "#") {
		return l, fmt.Errorf("vcan: log line %q: CAN FD frames are not supported", s)
	}
	v, err := strconv.ParseUint(id, 16, 32)
	switch {
	case err != nil:
		return l, fmt.Errorf("vcan: log line %q: bad ID %q", s, id)
	case len(id) == 3:
	case len(id) == 8:
		l.Frame.IsExtended = true
	default:
		return l, fmt.Errorf("vcan: log line %q: ID %q is neither 3 nor 8 hex digits", s, id)
	}
	l.Frame.ID = uint32(v)
	if strings.HasPrefix(data, "R") {
		l.Frame.IsRemote = true
		if n := data[1:]; n != "" {
			dlc, err := strconv.ParseUint(n, 10, 4)
			if err != nil || dlc > 8 {
				return l, fmt.Errorf("vcan: log line %q: bad remote length %q", s, n)
			}
			l.Frame.Length = uint8(dlc)
		}
	} else {
		b, err := hex.DecodeString(data)
		if err != nil || len(b) > 8 {
			return l, fmt.Errorf("vcan: log line %q: bad data %q", s, data)
		}
		l.Frame.Length = uint8(copy(l.Frame.Data[:], b))
	}
	if err := l.Frame.Validate(); err != nil {
		return l, fmt.Errorf("vcan: log line %q: %w", s, err)
	}
	return l, nil
}

// LogWriter writes frames to w in candump's log format, as interface iface.
type LogWriter struct {
	w     *bufio.Writer
	iface string
	err   error
}

// NewLogWriter returns a writer of candump log lines to w.
func NewLogWriter(w io.Writer, iface string) *LogWriter {
	return &LogWriter{w: bufio.NewWriter(w), iface: iface}
}

// Write logs one frame at time t.
func (lw *LogWriter) Write(t time.Duration, f can.Frame) error {
	if lw.err != nil {
		return lw.err
	}
	_, lw.err = lw.w.WriteString(FormatLogLine(LogLine{Time: t, Interface: lw.iface, Frame: f}) + "\n")
	return lw.err
}

// Flush writes buffered lines out.
func (lw *LogWriter) Flush() error {
	if lw.err != nil {
		return lw.err
	}
	return lw.w.Flush()
}

// Capture logs every frame conn receives until ctx ends or conn closes, then flushes. A hub's
// Node stamps frames with the hub's time; any other Conn with the time since Capture started.
func Capture(ctx context.Context, conn Conn, lw *LogWriter) error {
	start := time.Now()
	receive := func(ctx context.Context) (TimedFrame, error) {
		f, err := conn.Receive(ctx)
		return TimedFrame{Time: time.Since(start), Frame: f}, err
	}
	if node, ok := conn.(*Node); ok {
		receive = node.ReceiveTimed
	}
	for {
		tf, err := receive(ctx)
		if err != nil {
			if ferr := lw.Flush(); ferr != nil {
				return ferr
			}
			if errors.Is(err, ErrClosed) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
				return nil
			}
			return err
		}
		if err := lw.Write(tf.Time, tf.Frame); err != nil {
			return err
		}
	}
}

// ReadLog parses a candump log, one frame per non-empty line.
func ReadLog(r io.Reader) ([]LogLine, error) {
	var lines []LogLine
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" {
			continue
		}
		l, err := ParseLogLine(text)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		lines = append(lines, l)
	}
	return lines, sc.Err()
}

// Replay sends the logged frames on conn. Paced, it waits the logged time between two frames
// before sending the second (as canplayer does; through conn's Waiter when it has one);
// otherwise it sends them back to back.
func Replay(ctx context.Context, conn Conn, lines []LogLine, paced bool) error {
	for i, l := range lines {
		if paced && i > 0 {
			if gap := l.Time - lines[i-1].Time; gap > 0 {
				if err := Wait(ctx, conn, gap); err != nil {
					return err
				}
			}
		}
		if err := conn.Send(ctx, l.Frame); err != nil {
			return fmt.Errorf("replay frame %d: %w", i+1, err)
		}
	}
	return nil
}
