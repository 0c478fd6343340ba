import Foundation

/// A network namespace of the test's own, with loopback up and an
/// /etc/hosts that sends `hostNames` to 127.0.0.1 (`ip netns exec` mounts
/// /etc/netns/NAME/hosts over /etc/hosts): how a test serves real host
/// names, such as `hf.co` on port 443, without touching the machine's
/// network. Needs root. Removed, with every process left in it, when
/// released.
package final class NetworkNamespace: Sendable {
    package let name: String
    private static let ip = "/usr/sbin/ip"

    package init(hostNames: [String]) throws {
        name = "haul-\(getpid())-\(UUID().uuidString.prefix(6).lowercased())"
        let added = try HaulTestSupport.run(Self.ip, ["netns", "add", name])
        guard added.status == 0 else {
            throw TestFailure("ip netns add \(name) (this test needs root): \(added.stderr)")
        }
        do {
            let up = try HaulTestSupport.run(Self.ip, ["-n", name, "link", "set", "lo", "up"])
            guard up.status == 0 else { throw TestFailure("ip link set lo up in \(name): \(up.stderr)") }
            try FileManager.default.createDirectory(atPath: "/etc/netns/\(name)", withIntermediateDirectories: true)
            try "127.0.0.1 localhost \(hostNames.joined(separator: " "))\n"
                .write(toFile: "/etc/netns/\(name)/hosts", atomically: true, encoding: .utf8)
        } catch {
            remove()
            throw error
        }
    }

    deinit { remove() }

    private func remove() {
        if let pids = try? HaulTestSupport.run(Self.ip, ["netns", "pids", name]) {
            for pid in pids.stdout.split(whereSeparator: \.isNewline).compactMap({ pid_t($0) }) { kill(pid, SIGKILL) }
        }
        _ = try? HaulTestSupport.run(Self.ip, ["netns", "del", name])
        try? FileManager.default.removeItem(atPath: "/etc/netns/\(name)")
    }

    /// Gives the namespace's loopback interface another address
    /// (`203.0.113.10/32`, say): a host that looks public, in a namespace
    /// that still has no route anywhere else. (A dummy or veth interface
    /// needs kernel modules this machine may not have.)
    package func addAddress(_ cidr: String) throws {
        let r = try HaulTestSupport.run(Self.ip, ["-n", name, "addr", "add", cidr, "dev", "lo"])
        guard r.status == 0 else { throw TestFailure("ip addr add \(cidr) dev lo in \(name): \(r.stderr)") }
    }

    /// The executable and arguments that run `executable arguments` inside.
    package func command(_ executable: String, _ arguments: [String]) -> (executable: String, arguments: [String]) {
        (Self.ip, ["netns", "exec", name, executable] + arguments)
    }

    /// Runs a program to completion inside the namespace.
    package func run(_ executable: String, _ arguments: [String], environment: [String: String] = [:]) throws
        -> RunResult
    {
        let inside = command(executable, arguments)
        return try HaulTestSupport.run(inside.executable, inside.arguments, environment: environment)
    }
}
