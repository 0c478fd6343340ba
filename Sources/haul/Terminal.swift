#if canImport(Glibc)
import Glibc
#endif

/// A file descriptor the CLI draws on.
struct Terminal: Sendable {
    static let standardError = Terminal(fd: 2)
    static let standardOutput = Terminal(fd: 1)

    let fd: Int32

    var isTTY: Bool { isatty(fd) == 1 }

    /// Columns of the terminal, 80 when unknown.
    var width: Int {
        var size = winsize()
        if ioctl(fd, UInt(TIOCGWINSZ), &size) == 0, size.ws_col > 0 { return Int(size.ws_col) }
        return 80
    }

    func write(_ text: String) {
        var bytes = Array(text.utf8)
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeMutableBytes { Glibc.write(fd, $0.baseAddress! + done, $0.count - done) }
            if n < 0 { if errno == EINTR { continue } else { return } }
            done += n
        }
    }
}
