/// Which hosts a pull may reach at a private, loopback, link-local or
/// shared address (see `AddressPolicy` for the ranges). Public addresses
/// are always reachable.
public enum PrivateAddresses: Sendable, Equatable {
    /// Ollama's rule, for a user's own pulls (the CLI, an embedder): the
    /// registry named in the model (or a mirror configured for it) may be
    /// anywhere; hosts it redirects to, and token realms on other hosts,
    /// must be public; `insecure` turns the check off
    /// (`x/transfer/redirect.go` `checkedClient`, `AllowPrivateHosts`).
    case registryHost
    /// A daemon's rule: its clients are not its operator, so only these
    /// hosts (lower case, no port) and hosts.toml mirrors may be private,
    /// whatever a request's `insecure` says. A page or a neighbour cannot
    /// make the daemon fetch from `169.254.169.254` or `localhost`.
    case onlyListed(Set<String>)

    /// The daemon's rule from `HAUL_ALLOW_PRIVATE` and `HAUL_PULL_THROUGH`
    /// (comma-separated, in `ConfiguredHost`'s spellings; schemes and
    /// ports ignored: `http://10.0.0.9:5000` exempts `10.0.0.9`).
    /// `EnvironmentHosts.list` refuses what this skips, at `haul serve`'s
    /// startup.
    public static func daemon(_ environment: [String: String]) -> PrivateAddresses {
        let keys = ["HAUL_ALLOW_PRIVATE", "HAUL_PULL_THROUGH"]
        return .onlyListed(Set(keys.flatMap { EnvironmentHosts.readable(environment[$0]) }.map(\.host)))
    }
}
