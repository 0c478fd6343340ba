import Foundation
import HaulTestSupport
import Synchronization
import Testing

@testable import HaulKit

/// A descriptor closed twice closes whatever another thread opened under
/// the same number in between. Both failure paths that used to do it run
/// here in a loop beside a thread that keeps opening files and checks that
/// its own descriptors stay open.
@Suite struct DescriptorTests {
    /// Runs `failing` many times beside a witness thread; returns how often
    /// the witness found one of its descriptors closed under it.
    static func stolenDescriptors(iterations: Int, _ failing: @escaping @Sendable () -> Void) -> Int {
        let dir = TempDir("haul-fd")
        let stop = Atomic<Bool>(false)
        let stolen = Atomic<Int>(0)
        let witness = Thread {
            let path = dir.sub("witness")
            while !stop.load(ordering: .relaxed) {
                let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
                guard fd >= 0 else { continue }
                for _ in 0..<50 where fcntl(fd, F_GETFD) < 0 { stolen.add(1, ordering: .relaxed) }
                if fcntl(fd, F_GETFD) >= 0 { close(fd) }
            }
        }
        witness.start()
        for _ in 0..<iterations { failing() }
        stop.store(true, ordering: .relaxed)
        usleep(20_000)
        return stolen.load(ordering: .relaxed)
    }

    @Test func aFailedAtomicWriteClosesItsDescriptorOnce() throws {
        let dir = TempDir("haul-fd")
        // Renaming a file over a non-empty directory fails after the write.
        try FileManager.default.createDirectory(atPath: dir.sub("target/inside"), withIntermediateDirectories: true)
        let target = dir.sub("target")
        let stolen = Self.stolenDescriptors(iterations: 3000) {
            #expect(throws: HaulError.self) {
                try FileSystem.writeAtomically([1, 2, 3], to: target, fsyncFile: false, syncDirectory: false)
            }
        }
        #expect(stolen == 0)
    }

    @Test func aPartialThatCannotBePreallocatedClosesItsDescriptorOnce() throws {
        let dir = TempDir("haul-fd")
        let path = dir.sub("sha256-big-partial")
        let digest = Digest(bytes: SHA256.hash(Array("big".utf8)))
        // Larger than any file ext4 allows: fallocate fails with EFBIG.
        let stolen = Self.stolenDescriptors(iterations: 2000) {
            #expect(throws: HaulError.self) { try PartialBlob(path: path, digest: digest, size: 1 << 62, model: "m") }
        }
        #expect(stolen == 0)
    }
}
