extension ModelName {
    /// Whether `reference` names an Ollama cloud model: `gpt-oss:cloud`,
    /// `gpt-oss:20b-cloud`, or `gpt-oss:20b:cloud`, which Ollama rewrites to
    /// the latter (`internal/modelref` `ParseRef`, `NormalizePullName`). Its
    /// manifest is a stub that points at ollama.com, where the model runs:
    /// there are no weights to pull, and Haul runs no models.
    public static func isCloudReference(_ reference: String) -> Bool {
        let text = reference.trimmingCharacters(in: .whitespaces)
        guard let colon = text.lastIndex(of: ":") else { return false }
        let suffix = text[text.index(after: colon)...].trimmingCharacters(in: .whitespaces).lowercased()
        return suffix == "cloud" || (!suffix.contains("/") && suffix.hasSuffix("-cloud"))
    }

    /// A cloud model (`:cloud`, `-cloud`): Ollama runs it remotely, and there is nothing to pull.
    public var isCloud: Bool { Self.isCloudReference(description) }

    /// The name to pull that a user typed. A cloud reference is refused
    /// first (`cloudModel`), before parsing: its `:20b:cloud` spelling is
    /// not a valid name, and "invalid model name" would not say why.
    public init(pulling text: String) throws(HaulError) {
        if Self.isCloudReference(text) { throw .cloudModel(text) }
        try self.init(parsing: text)
    }
}
