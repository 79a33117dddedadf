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

// LogLine is one line of a candump log: "(seconds.micros) iface ID#DATA", or for a CAN FD frame
// "(seconds.micros) iface ID##<flags>DATA".
type LogLine struct {
	Time      time.Duration // since the epoch, or since the capture started
	Interface string
	Frame     can.Frame // the frame when it is classic CAN
	Wire      Frame     // the frame, classic or CAN FD (ParseLogLine sets it for both)
}

// CAN FD flags of a candump record: the hex digit after "##" (linux/can.h's canfd_frame.flags).
const (
	logFlagBRS = 0x1 // CANFD_BRS
	logFlagESI = 0x2 // CANFD_ESI
	logFlagFDF = 0x4 // CANFD_FDF, which newer kernels set on every CAN FD frame
)

// FormatLogLine writes l in candump's log format (candump -l, read by canplayer): the ID as 3 hex
// digits for 11-bit and 8 for 29-bit frames, the data in uppercase hex, R for a remote frame. A
// CAN FD frame (l.Wire with FD set; l.Frame is then ignored) is written ID##<flags>DATA, flags
// being one hex digit: 1 for BRS, 2 for ESI (as candump writes them without CANFD_FDF).
func FormatLogLine(l LogLine) string {
	var b strings.Builder
	us := l.Time.Microseconds()
	fmt.Fprintf(&b, "(%d.%06d) %s ", us/1e6, us%1e6, l.Interface)
	if l.Wire.FD {
		formatFDRecord(&b, l.Wire)
		return b.String()
	}
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

// formatFDRecord writes the ID##<flags>DATA record of a CAN FD frame.
func formatFDRecord(b *strings.Builder, f Frame) {
	if f.Extended {
		fmt.Fprintf(b, "%08X##", f.ID)
	} else {
		fmt.Fprintf(b, "%03X##", f.ID)
	}
	flags := 0
	if f.BRS {
		flags |= logFlagBRS
	}
	if f.ESI {
		flags |= logFlagESI
	}
	fmt.Fprintf(b, "%X", flags)
	b.WriteString(strings.ToUpper(hex.EncodeToString(f.Data[:f.Length])))
}

// ParseLogLine reads one line of a candump log. It accepts what FormatLogLine writes and what
// candump -l writes for classic CAN frames and CAN FD frames (ID##<flags>DATA, flags a hex digit
// of BRS 1, ESI 2 and FDF 4; the data one of CAN FD's lengths).
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
	if fd, ok := strings.CutPrefix(data, "#"); ok {
		return parseFDRecord(s, l, fd)
	}
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
	l.Wire = FromClassic(l.Frame)
	return l, nil
}

// parseFDRecord reads the <flags>DATA of a CAN FD record into l, whose Frame holds the ID.
func parseFDRecord(s string, l LogLine, rec string) (LogLine, error) {
	if rec == "" {
		return l, fmt.Errorf("vcan: log line %q: CAN FD record without flags", s)
	}
	flags, err := strconv.ParseUint(rec[:1], 16, 4)
	if err != nil {
		return l, fmt.Errorf("vcan: log line %q: bad CAN FD flags %q", s, rec[:1])
	}
	b, err := hex.DecodeString(rec[1:])
	if err != nil || !ValidFDLength(len(b)) {
		return l, fmt.Errorf("vcan: log line %q: bad CAN FD data %q (0-8, 12, 16, 20, 24, 32, 48 or 64 bytes)", s, rec[1:])
	}
	f := Frame{ID: l.Frame.ID, Extended: l.Frame.IsExtended, FD: true, Length: uint8(len(b)),
		BRS: flags&logFlagBRS != 0, ESI: flags&logFlagESI != 0}
	copy(f.Data[:], b)
	if err := f.Validate(); err != nil {
		return l, fmt.Errorf("vcan: log line %q: %w", s, err)
	}
	l.Frame, l.Wire = can.Frame{}, f
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

// Write logs one classic frame at time t.
func (lw *LogWriter) Write(t time.Duration, f can.Frame) error {
	return lw.WriteFrame(t, FromClassic(f))
}

// WriteFrame logs one frame, classic or CAN FD, at time t.
func (lw *LogWriter) WriteFrame(t time.Duration, f Frame) error {
	if lw.err != nil {
		return lw.err
	}
	l := LogLine{Time: t, Interface: lw.iface, Wire: f}
	l.Frame, _ = f.Classic()
	_, lw.err = lw.w.WriteString(FormatLogLine(l) + "\n")
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
// A FrameConn's CAN FD frames are logged too.
func Capture(ctx context.Context, conn Conn, lw *LogWriter) error {
	start := time.Now()
	receive := func(ctx context.Context) (TimedFrame, error) {
		f, err := conn.Receive(ctx)
		return TimedFrame{Time: time.Since(start), Wire: FromClassic(f)}, err
	}
	if fc, ok := conn.(FrameConn); ok {
		receive = func(ctx context.Context) (TimedFrame, error) {
			f, err := fc.ReceiveFrame(ctx)
			return TimedFrame{Time: time.Since(start), Wire: f}, err
		}
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
		if err := lw.WriteFrame(tf.Time, tf.Wire); err != nil {
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
// otherwise it sends them back to back. CAN FD frames need a FrameConn.
func Replay(ctx context.Context, conn Conn, lines []LogLine, paced bool) error {
	for i, l := range lines {
		if paced && i > 0 {
			if gap := l.Time - lines[i-1].Time; gap > 0 {
				if err := Wait(ctx, conn, gap); err != nil {
					return err
				}
			}
		}
		if err := replayOne(ctx, conn, l); err != nil {
			return fmt.Errorf("replay frame %d: %w", i+1, err)
		}
	}
	return nil
}

// replayOne sends one logged frame.
func replayOne(ctx context.Context, conn Conn, l LogLine) error {
	if !l.Wire.FD {
		return conn.Send(ctx, l.Frame)
	}
	fc, ok := conn.(FrameConn)
	if !ok {
		return fmt.Errorf("vcan: a CAN FD frame on a connection without CAN FD (%T)", conn)
	}
	return fc.SendFrame(ctx, l.Wire)
}
