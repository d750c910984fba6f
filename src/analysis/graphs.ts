/**
 * The ONNX graphs of k-means and PCA, built in memory with the embedding generator's writer
 * (src/embed/generate/onnx-proto.ts). Dims are symbolic (N rows, D columns, K centroids, T candidates,
 * M rows picked or axes), so one session per graph serves every slide.
 *
 * Distances use ‖x − c‖² = ‖x‖² + ‖c‖² − 2 x·c: one Gemm (alpha −2, the centroids transposed in place
 * by transB, ‖c‖² as its bias) reads X once whatever k is; ‖x‖², the same for every centroid of a row,
 * is added after the minimum.
 */
import { attr, GraphBuilder } from '../embed/generate/graph.js';
import { encodeModel, type ValueInfoSpec } from '../embed/generate/onnx-proto.js';

export type GraphName = 'rowNorms' | 'seedDistances' | 'nearest' | 'nearestOfRows' | 'clusterSums' | 'scatter' | 'projection';

interface GraphDef {
  inputs: ValueInfoSpec[];
  outputs: ValueInfoSpec[];
  build: (g: GraphBuilder) => void;
}

/** Opset 21, IR version 10, as the generated embedding models (src/embed/generate/index.ts). */
const OPSET = 21;
const IR_VERSION = 10;
/** onnx TensorProto.DataType values for Cast. */
const FLOAT = 1;
const INT64 = 7;

const axes = (g: GraphBuilder, ...values: number[]): string => g.constInt64([values.length], values);

const centroidInputs: ValueInfoSpec[] = [
  { name: 'centroids', shape: ['K', 'D'] },
  { name: 'centroidNorms', shape: ['K'] },
];
const nearestOutputs: ValueInfoSpec[] = [
  { name: 'labels', shape: ['N'] },
  { name: 'distances', shape: ['N', 'K'] },
];

/**
 * Each row's nearest centroid (labels, as floats: graph outputs are declared float by onnx-proto.ts and
 * labels < 32 are exact; the lowest index among equals) and its squared distances to every centroid,
 * which the bounds of kmeans-lloyd.ts need.
 */
function buildNearest(g: GraphBuilder, x: string, xNorms: string): void {
  const partial = g.op('Gemm', [x, 'centroids', 'centroidNorms'], { alpha: attr.float(-2), transB: attr.int(1) }); // [N, K]
  g.op('Cast', [g.op('ArgMin', [partial], { axis: attr.int(1), keepdims: attr.int(0) })], { to: attr.int(FLOAT) }, 'labels');
  // Rounding can make a row's distance to itself slightly negative: Relu clamps it to 0.
  g.op('Relu', [g.op('Add', [partial, g.op('Unsqueeze', [xNorms, axes(g, 1)])])], {}, 'distances');
}

const GRAPHS: Record<GraphName, GraphDef> = {
  rowNorms: {
    inputs: [{ name: 'x', shape: ['N', 'D'] }],
    outputs: [{ name: 'norms', shape: ['N'] }],
    build: (g) => void g.op('ReduceSumSquare', ['x', axes(g, 1)], { keepdims: attr.int(0) }, 'norms'),
  },
  seedDistances: {
    inputs: [
      { name: 'x', shape: ['N', 'D'] },
      { name: 'xNorms', shape: ['N', 1] },
      { name: 'candidates', shape: ['T', 'D'] },
      { name: 'candidateNorms', shape: ['T'] },
      { name: 'closest', shape: ['N', 1] },
    ],
    outputs: [{ name: 'distances', shape: ['N', 'T'] }],
    build: (g) => {
      const partial = g.op('Gemm', ['x', 'candidates', 'candidateNorms'], { alpha: attr.float(-2), transB: attr.int(1) });
      const distances = g.op('Relu', [g.op('Add', [partial, 'xNorms'])]);
      g.op('Min', [distances, 'closest'], {}, 'distances');
    },
  },
  nearest: {
    inputs: [{ name: 'x', shape: ['N', 'D'] }, { name: 'xNorms', shape: ['N'] }, ...centroidInputs],
    outputs: nearestOutputs,
    build: (g) => buildNearest(g, 'x', 'xNorms'),
  },
  nearestOfRows: {
    // The rows whose cluster may have changed, picked inside the graph: no copy in JavaScript.
    // Row numbers come as floats (value infos are float), exact up to 2^24 rows.
    inputs: [{ name: 'x', shape: ['N', 'D'] }, { name: 'xNorms', shape: ['N'] }, { name: 'rows', shape: ['M'] }, ...centroidInputs],
    outputs: nearestOutputs.map((o) => ({ ...o, shape: ['M', ...o.shape.slice(1)] })),
    build: (g) => {
      const rows = g.op('Cast', ['rows'], { to: attr.int(INT64) });
      buildNearest(g, g.op('Gather', ['x', rows], { axis: attr.int(0) }), g.op('Gather', ['xNorms', rows], { axis: attr.int(0) }));
    },
  },
  clusterSums: {
    inputs: [
      { name: 'x', shape: ['N', 'D'] },
      { name: 'labels', shape: [1, 'N'] },
      { name: 'clusterIds', shape: ['K', 1] },
    ],
    outputs: [{ name: 'sums', shape: ['K', 'D'] }],
    build: (g) => {
      // One-hot [K, N] by comparing 0..K-1 with the labels (onnxruntime has no float OneHot), then
      // onehot · X. Built as [K, N], not [N, K]: no transpose; ~25 % faster than Gemm with transA here.
      const onehot = g.op('Cast', [g.op('Equal', ['clusterIds', 'labels'])], { to: attr.int(FLOAT) });
      g.op('MatMul', [onehot, 'x'], {}, 'sums');
    },
  },
  scatter: {
    inputs: [{ name: 'x', shape: ['N', 'D'] }],
    outputs: [
      { name: 'mean', shape: [1, 'D'] },
      { name: 'scatter', shape: ['D', 'D'] },
    ],
    build: (g) => {
      // Centred before the product, not XᵀX − N·μμᵀ: float32 would lose the variance of columns whose
      // mean is large next to their spread.
      g.op('ReduceMean', ['x', axes(g, 0)], { keepdims: attr.int(1) }, 'mean');
      const centred = g.op('Sub', ['x', 'mean']);
      g.op('Gemm', [centred, centred], { transA: attr.int(1) }, 'scatter');
    },
  },
  projection: {
    inputs: [
      { name: 'x', shape: ['N', 'D'] },
      { name: 'mean', shape: ['D'] },
      { name: 'axes', shape: ['M', 'D'] },
    ],
    outputs: [{ name: 'projected', shape: ['N', 'M'] }],
    build: (g) => void g.op('Gemm', [g.op('Sub', ['x', 'mean']), 'axes'], { transB: attr.int(1) }, 'projected'),
  },
};

/** The serialised model of one graph, for `InferenceSession.create(bytes)`. */
export function encodeAnalysisGraph(name: GraphName): Uint8Array {
  const def = GRAPHS[name];
  const g = new GraphBuilder(0); // no parameters are drawn: the seed is unused
  def.build(g);
  return encodeModel({
    irVersion: IR_VERSION,
    opsetVersion: OPSET,
    producerName: 'wsi-gateway/analysis',
    producerVersion: '1',
    docString: `analysis graph ${name}`,
    graph: g.toGraph(name, def.inputs, def.outputs),
  });
}
