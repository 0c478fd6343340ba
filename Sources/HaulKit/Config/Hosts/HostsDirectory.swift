import Foundation
import TOMLKit

/// Mirror configuration in containerd's `hosts.toml` format, read from the
/// same kind of directory (`DIR/<registry host[:port]>/hosts.toml`, else
/// `DIR/_default/hosts.toml`), so one file configures containerd and Haul.
///
/// Supported, as containerd reads them (`docs/hosts.md`): `server`;
/// `[host."URL"]` tables, tried in file order before `server`; in each,
/// and at the top level for `server`: `capabilities` (`pull`, `resolve`;
/// `push` is accepted and means nothing to a puller), `ca` (a path or a
/// list; the first is used), `skip_verify`, `header` (a table of strings or
/// lists of strings), `override_path`. Anything else is refused by name, so
/// a typo never silently sends a pull elsewhere.
public struct HostsDirectory: Sendable, Equatable {
    /// Searched in order: the first directory with a file for the registry
    /// wins, then the first with a `_default`.
    public let directories: [String]

    /// Searches `directories` in order (each holding `<host>/hosts.toml` files).
    public init(directories: [String]) { self.directories = directories }

    /// No mirrors: every registry is asked directly.
    public static let none = HostsDirectory(directories: [])

    /// `HAUL_HOSTS_DIR` (colon-separated), else
    /// `~/.config/haul/hosts.d:/etc/haul/hosts.d`.
    public static func fromEnvironment(_ environment: [String: String] = ProcessInfo.processInfo.environment)
        -> HostsDirectory
    {
        if let list = environment["HAUL_HOSTS_DIR"], !list.isEmpty {
            return HostsDirectory(directories: list.split(separator: ":").map(String.init))
        }
        let home = environment["HOME"] ?? NSHomeDirectory()
        return HostsDirectory(directories: [home + "/.config/haul/hosts.d", "/etc/haul/hosts.d"])
    }

    /// The file that configures `registry` (`host[:port]`), if any.
    public func file(for registry: String) -> String? {
        for name in [registry.lowercased(), "_default"] {
            for directory in directories {
                let path = directory + "/" + name + "/hosts.toml"
                if FileSystem.exists(path) { return path }
            }
        }
        return nil
    }

    /// Where `name` is pulled from, in the order to try: the configured
    /// mirrors, then the registry (`server`, by default the name's own host).
    public func hosts(for name: ModelName, insecure: Bool) throws(HaulError) -> [RegistryHost] {
        let upstream = RegistryHost.upstream(name, insecure: insecure)
        guard let path = file(for: name.host) else { return [upstream] }
        let text: String
        do {
            text = String(decoding: try FileSystem.readFile(path, limit: 1 << 20), as: UTF8.self)
        } catch {
            throw .hostsConfig(path: path, line: nil, message: "\(error)")
        }
        return try Self.parse(text, path: path, upstream: upstream)
    }

    static let hostKeys: Set<String> = ["capabilities", "ca", "skip_verify", "header", "override_path", "client"]

    /// Parses a hosts.toml's text. `upstream` is the registry itself, used
    /// last when the file names no `server`.
    static func parse(_ text: String, path: String, upstream: RegistryHost) throws(HaulError) -> [RegistryHost] {
        let table: TOMLTable
        do {
            table = try TOMLTable(string: text)
        } catch let error as TOMLParseError {
            throw .hostsConfig(path: path, line: error.source.begin.line, message: error.description)
        } catch {
            throw .hostsConfig(path: path, line: nil, message: "\(error)")
        }
        for key in table.keys where key != "server" && key != "host" && !hostKeys.contains(key) {
            throw .hostsConfig(path: path, line: line(of: key, in: text), message: "unknown key \"\(key)\"")
        }
        var hosts: [RegistryHost] = []
        if let mirrors = table["host"] {
            guard let mirrors = mirrors.table else {
                throw .hostsConfig(
                    path: path, line: line(of: "host", in: text),
                    message: "\"host\" must be a table of [host.\"URL\"] tables")
            }
            // toml++ keeps a table's keys sorted; the order mirrors are
            // tried in is the order the file lists them, read from the text.
            let order = headerOrder(in: text)
            let urls = mirrors.keys.sorted { (order[$0]?.index ?? .max, $0) < (order[$1]?.index ?? .max, $1) }
            for url in urls {
                let at = order[url]?.line
                guard let entry = mirrors[url]?.table else {
                    throw .hostsConfig(path: path, line: at, message: "host \"\(redacted(url))\" must be a table")
                }
                hosts.append(try host(url, entry, mirror: true, path: path, line: at))
            }
        }
        if let server = table["server"] {
            guard let url = server.string else {
                throw .hostsConfig(
                    path: path, line: line(of: "server", in: text), message: "\"server\" must be a URL string")
            }
            hosts.append(try host(url, table, mirror: false, path: path, line: line(of: "server", in: text)))
        } else {
            hosts.append(upstream)
        }
        return hosts
    }

    private static func host(_ url: String, _ entry: TOMLTable, mirror: Bool, path: String, line: Int?)
        throws(HaulError) -> RegistryHost
    {
        func fail(_ message: String) -> HaulError {
            .hostsConfig(
                path: path, line: line, message: "\(mirror ? "host \"\(redacted(url))\"" : "server"): \(message)")
        }
        guard let parts = URLParts(url), let sep = url.range(of: "://") else {
            throw fail("not an http or https URL")
        }
        // Credentials in a URL would be sent and shown wherever the URL is
        // (logs, error texts to daemon clients); they have their own place.
        if url[sep.upperBound...].prefix(while: { $0 != "/" && $0 != "?" && $0 != "#" }).contains("@") {
            throw fail("credentials in the URL are refused; put them in HAUL_REGISTRY_AUTH or docker's config.json")
        }
        if mirror {
            for key in entry.keys where !hostKeys.contains(key) { throw fail("unknown key \"\(key)\"") }
        }
        var capabilities: RegistryHost.Capabilities = []
        if let value = entry["capabilities"] {
            guard let list = value.array?.map({ $0.string }), list.allSatisfy({ $0 != nil }) else {
                throw fail("\"capabilities\" must be a list of strings")
            }
            for name in list.compactMap({ $0 }) {
                switch name {
                case "pull": capabilities.insert(.pull)
                case "resolve": capabilities.insert(.resolve)
                case "push": break
                default: throw fail("unknown capability \"\(name)\" (pull, resolve, push)")
                }
            }
        } else {
            capabilities = .all
        }
        var ca: String?
        if let value = entry["ca"] {
            if let one = value.string {
                ca = one
            } else if let list = value.array, let first = list.first?.string {
                ca = first
            } else {
                throw fail("\"ca\" must be a path or a list of paths")
            }
            // A relative path is relative to this hosts.toml's directory, as
            // containerd reads it, never to wherever Haul was started.
            if let relative = ca, !relative.hasPrefix("/") { ca = FileSystem.parent(of: path) + "/" + relative }
            if let ca, !FileSystem.exists(ca) { throw fail("ca file \(ca) does not exist") }
        }
        var skipVerify = false
        if let value = entry["skip_verify"] {
            guard let flag = value.bool else { throw fail("\"skip_verify\" must be true or false") }
            skipVerify = flag
        }
        var overridePath = false
        if let value = entry["override_path"] {
            guard let flag = value.bool else { throw fail("\"override_path\" must be true or false") }
            overridePath = flag
        }
        var headers: [String] = []
        if let value = entry["header"] {
            guard let table = value.table else { throw fail("\"header\" must be a table") }
            for name in table.keys.sorted() {
                let values: [String]
                if let one = table[name]?.string {
                    values = [one]
                } else if let list = table[name]?.array?.map({ $0.string }), list.allSatisfy({ $0 != nil }) {
                    values = list.compactMap { $0 }
                } else {
                    throw fail("header \"\(name)\" must be a string or a list of strings")
                }
                guard !name.isEmpty, name.unicodeScalars.allSatisfy(Self.isTokenScalar) else {
                    throw fail("header name \"\(name)\" is not an HTTP token")
                }
                for v in values {
                    // By scalars: "\r\n" is one Character, equal to neither "\r" nor "\n".
                    guard !v.unicodeScalars.contains(where: { $0 == "\r" || $0 == "\n" || $0 == "\0" }) else {
                        throw fail("header \"\(name)\" has a line break or NUL")
                    }
                    headers.append("\(name): \(v)")
                }
            }
        }
        // The API root: the URL's path plus /v2, unless override_path says
        // the path is the root already (containerd's rule).
        let origin = "\(parts.scheme)://" + url[sep.upperBound...].prefix { $0 != "/" && $0 != "?" && $0 != "#" }
        var apiPath = String(url[sep.upperBound...].drop { $0 != "/" }.prefix { $0 != "?" && $0 != "#" })
        while apiPath.hasSuffix("/") { apiPath.removeLast() }
        if !overridePath && !apiPath.hasSuffix("/v2") { apiPath += "/v2" }
        return RegistryHost(
            root: origin + apiPath, capabilities: capabilities, caFile: ca, skipVerify: skipVerify,
            headers: headers, isMirror: mirror)
    }

    /// `url` with any userinfo (`user:password@`) shown as `***@`.
    static func redacted(_ url: String) -> String {
        guard let sep = url.range(of: "://") else { return url }
        let authority = url[sep.upperBound...].prefix { $0 != "/" && $0 != "?" && $0 != "#" }
        guard let at = authority.lastIndex(of: "@") else { return url }
        return String(url[..<sep.upperBound]) + "***" + String(url[at...])
    }

    /// RFC 9110 `tchar`: what a header name is made of.
    static func isTokenScalar(_ scalar: Unicode.Scalar) -> Bool {
        scalar.isASCII
            && (("a"..."z").contains(scalar) || ("A"..."Z").contains(scalar) || ("0"..."9").contains(scalar)
                || "!#$%&'*+-.^_`|~".unicodeScalars.contains(scalar))
    }

    /// `[host."URL"]` headers in file order, with their line numbers.
    static func headerOrder(in text: String) -> [String: (index: Int, line: Int)] {
        var out: [String: (index: Int, line: Int)] = [:]
        for (number, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            guard let match = line.firstMatch(of: /^\s*\[\s*host\s*\.\s*(?:"([^"]*)"|'([^']*)')\s*[\].]/) else {
                continue
            }
            let url = String(match.1 ?? match.2 ?? "")
            if out[url] == nil { out[url] = (out.count, number + 1) }
        }
        return out
    }

    /// The first line that sets `key` at the start of a line, for messages.
    private static func line(of key: String, in text: String) -> Int? {
        for (number, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let trimmed = line.drop { $0 == " " || $0 == "\t" }
            if trimmed.hasPrefix(key) { return number + 1 }
        }
        return nil
    }
}
