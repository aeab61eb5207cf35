// Every bound dsync enforces, in one place. Units are in the names.

export const LIMITS = {
  /** Longest file or directory name, in UTF-8 bytes (the common filesystem limit). */
  nameLengthBytesMax: 255,
  /** Longest relative path, in UTF-8 bytes. */
  pathLengthBytesMax: 4096,
  /** Longest symlink target, in UTF-8 bytes. */
  symlinkTargetLengthBytesMax: 4096,
  /** Deepest directory nesting a tree may have. */
  treeDepthMax: 256,
  /** Longest version message, in UTF-8 bytes. */
  messageLengthBytesMax: 4096,
  /** Most parents a version may name. */
  versionParentsMax: 16,
  /** Largest structured object (file, tree, version node), in bytes. Pages keep real ones far below. */
  structuredObjectBytesMax: 1024 * 1024,
  /** Largest object of any kind (a chunk is at most the chunker's max size). */
  objectBytesMax: 8 * 1024 * 1024,
  /** Entries in one page of a paged list: the content-defined rule aims at the average. */
  pageEntriesMin: 16,
  pageEntriesAvgLog2: 8, // 256 entries on average
  pageEntriesMax: 2048,
  /** Largest request body the HTTP API accepts, in bytes. */
  requestBodyBytesMax: 64 * 1024 * 1024,
  /**
   * Largest JSON request body, in bytes (as sent and inflated). The largest real one, a peer's
   * history request resuming from historyResumeIdsMax ids, is about 0.7 MB.
   */
  jsonBodyBytesMax: 2 * 1024 * 1024,
  /**
   * Most values (map keys and values, array items, scalars) one msgpack body may hold, and how
   * deep it may nest. The largest real ones: a download reply of batchIdsMax objects, about
   * 300 000 values, nested 3 deep. Each empty map or array unpacks into tens of bytes of memory,
   * so this, not the body's size, is what bounds a decode's memory.
   */
  msgpackValuesMax: 1_000_000,
  msgpackDepthMax: 64,
  /** The same for JSON from the network (a request body, a peer's listing or error), counting containers and separators. */
  jsonValuesMax: 1_000_000,
  jsonDepthMax: 64,
  /** Most nodes a version vector from the network (a listing, a notice, a history request) may name; one per node that ever wrote the folder. */
  versionVectorNodesMax: 4096,
  /** Most ids in one "which do you lack?" or download batch, and most objects in one upload batch. */
  batchIdsMax: 100_000,
  /**
   * Ids a client sends in one "which do you lack?" request (below batchIdsMax, so a reply of
   * all of them stays small: 16 384 ids are 0.5 MiB each way).
   */
  missingQueryIds: 16_384,
  /**
   * Ids per batch of a Merkle descent (core/descend.ts): one "which do you have?" and one load
   * per batch. The walk holds the children of one batch per level: with directory pages of 256
   * entries on average, about 256 000 ids (some 25 MB), a few MB of loaded objects.
   */
  descentBatchIds: 1024,
  /**
   * Ids per batched index read (one SQLite statement with this many bound ids: a pack-index
   * presence or location check, a read of completeness marks). Far below SQLite's 32 766 bound
   * variables; large enough that a commit's check of 1 000 000 files makes thousands of
   * statements, not millions.
   */
  indexLookupBatchIds: 512,
  /**
   * Old chunks one block-signature request may name (POST /v1/objects/signatures), and the most
   * signature bytes its reply holds (ids past that are answered with none): 256 default chunks
   * are about 1.5 MiB of signatures.
   */
  signatureIdsMax: 256,
  signatureReplyBytesMax: 8 * 1024 * 1024,
  /**
   * Work one upload request's deltas (items of kind 2) may cost the node: the bytes they rebuild
   * (a client closes a batch at 4 MiB of them) and the bytes of bases read for them. A delta is
   * small on the wire and the work it names is not, so it is bounded per request, not by the body.
   */
  deltaRebuiltBytesMaxPerRequest: 64 * 1024 * 1024,
  deltaBaseBytesMaxPerRequest: 256 * 1024 * 1024,
  /** Target size of one upload/download batch, in bytes. */
  batchBytesTarget: 4 * 1024 * 1024,
  /** Requests a client keeps in flight at once. */
  transferConcurrency: 4,
  /** Longest folder name, in bytes. */
  folderNameLengthBytesMax: 128,
  /** Versions in one page of a folder's history (GET /v1/folders/:folder/versions): the default and the most. */
  versionsPageMax: 1000,
  /** Folders in one page of a folder listing (GET /v1/folders, the peer listing, status): the default and the most. */
  foldersPageMax: 1000,
  /** Versions in one page of a peer's history answer, and the most bytes of version objects in it (at least one is sent). */
  historyPageVersionsMax: 1000,
  historyPageBytesMax: 4 * 1024 * 1024,
  /** Most ids a history request may resume from, and where a page may say its walk stopped (at most twice those, so a page that resumes from the most can always say where it stopped). */
  historyResumeIdsMax: 10_000,
  historyFrontierIdsMax: 20_000,
  /**
   * Most objects one stored-objects notice names (POST /v1/peer/stored: a pushing node telling
   * its peers what an upload group stored, so they fetch it ahead of the head): about 300 KB of
   * JSON, well under jsonBodyBytesMax.
   */
  storedNoticeObjectsMax: 4096,
} as const;
