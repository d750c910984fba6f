/**
 * Analysis of stored embeddings: k-means (kmeans.ts, matrix-form Lloyd steps through onnxruntime, with
 * PCA in pca.ts), cosine similarity (patch-geometry.ts), overlay images (overlay-image.ts), QuPath
 * GeoJSON and CSV exports (export.ts, outlines in cell-outline.ts), and the colours (palette.ts, shared
 * with the viewer). analysis-service.ts puts them together over the embedding store, with caches.
 */
export { createAnalysisService, type AnalysisService, type ClusterAnalysis, type LoadedRun, type RunRef, type SimilarityAnalysis } from './analysis-service.js';
export { createKMeansEngine, type KMeansEngine, type KMeansRunOptions, type KMeansRunResult } from './kmeans.js';
export { computeClusterCsv, computeClusterGeoJson, type PatchCells } from './export.js';
export { renderOverlayPng } from './overlay-image.js';
export { computeSimilarityLut, parseHexColour } from './palette.js';
