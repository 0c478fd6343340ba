import ArgumentParser
import Glibc
import HaulKit

/// TLS options shared by `pull` and `serve`.
struct TLSOptions: ParsableArguments {
    @Option(
        help: ArgumentHelp(
            "Trust the CA certificates in this PEM file (default: the system store, or $SSL_CERT_FILE).",
            valueName: "path"))
    var caFile: String?

    @Flag(help: "Accept any TLS certificate. Unsafe: anyone on the network path can impersonate the registry.")
    var insecureSkipTlsVerify = false

    func validate() throws {
        if let caFile, access(caFile, R_OK) != 0 {
            throw ValidationError("--ca-file \(caFile): no such readable file")
        }
    }

    func apply(to config: inout EngineConfiguration) {
        if let caFile { config.caFile = caFile }
        if insecureSkipTlsVerify {
            config.skipTLSVerification = true
            Terminal.standardError.write(
                "warning: TLS certificate verification is off (--insecure-skip-tls-verify); "
                    + "anyone on the network path can impersonate the registry\n")
        }
    }
}
