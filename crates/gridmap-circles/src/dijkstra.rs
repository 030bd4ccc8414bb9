//! Many-source Dijkstra with a distance limit over a [`WalkGraph`].

use crate::WalkGraph;
use std::cmp::Ordering;
use std::collections::BinaryHeap;

/// Reusable state for repeated searches on one graph.
///
/// Greedy site selection runs one search per candidate node; resetting only
/// the nodes a search touched keeps each search proportional to its reach
/// rather than to the whole graph.
#[derive(Debug, Clone)]
pub struct ShortestPaths<'graph> {
    graph: &'graph WalkGraph,
    distances: Vec<f64>,
    /// For each reached node, the index in `sources` of the source it is
    /// nearest to (ties to the source settled first).
    origins: Vec<u32>,
    reached: Vec<usize>,
    heap: BinaryHeap<Candidate>,
}

impl<'graph> ShortestPaths<'graph> {
    #[must_use]
    pub fn new(graph: &'graph WalkGraph) -> Self {
        Self {
            graph,
            distances: vec![f64::INFINITY; graph.node_count()],
            origins: vec![u32::MAX; graph.node_count()],
            reached: Vec::new(),
            heap: BinaryHeap::new(),
        }
    }

    /// Network distances from the nearest of `sources` (node, starting
    /// distance) to every node within `limit_m`; returns the reached nodes in
    /// order of distance. Sources starting beyond the limit are ignored.
    pub fn run(&mut self, sources: &[(usize, f64)], limit_m: f64) -> &[usize] {
        // Every node given a finite distance is pushed within the limit and so
        // is settled below: resetting the settled nodes resets them all.
        for &node in &self.reached {
            self.distances[node] = f64::INFINITY;
        }
        self.reached.clear();
        self.heap.clear();
        for (index, &(node, start)) in sources.iter().enumerate() {
            if start <= limit_m && start < self.distances[node] {
                self.distances[node] = start;
                self.origins[node] = u32::try_from(index).unwrap_or(u32::MAX);
                self.heap.push(Candidate {
                    distance: start,
                    node,
                });
            }
        }
        while let Some(Candidate { distance, node }) = self.heap.pop() {
            // A stale entry: the node was settled earlier at a shorter distance.
            // Improvements are strict, so the settling entry is the only one
            // equal to the node's distance.
            if distance > self.distances[node] {
                continue;
            }
            self.reached.push(node);
            for &(next, length) in self.graph.neighbours(node) {
                let through = distance + length;
                if through <= limit_m && through < self.distances[next] {
                    self.distances[next] = through;
                    self.origins[next] = self.origins[node];
                    self.heap.push(Candidate {
                        distance: through,
                        node: next,
                    });
                }
            }
        }
        &self.reached
    }

    /// The distance found by the last [`run`](Self::run), if the node was
    /// reached.
    #[must_use]
    pub fn distance(&self, node: usize) -> Option<f64> {
        let distance = self.distances[node];
        distance.is_finite().then_some(distance)
    }

    /// The index in the last run's `sources` of the source nearest to
    /// `node`, if the node was reached.
    #[must_use]
    pub fn origin(&self, node: usize) -> Option<usize> {
        self.distance(node)?;
        usize::try_from(self.origins[node]).ok()
    }

    /// Nodes of the last run in order of distance.
    #[must_use]
    pub fn reached(&self) -> &[usize] {
        &self.reached
    }
}

/// A heap entry ordered so that the smallest distance pops first.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Candidate {
    distance: f64,
    node: usize,
}

impl Eq for Candidate {}

impl Ord for Candidate {
    fn cmp(&self, other: &Self) -> Ordering {
        other
            .distance
            .total_cmp(&self.distance)
            .then_with(|| other.node.cmp(&self.node))
    }
}

impl PartialOrd for Candidate {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use geo::line_string;

    #[test]
    fn nearest_source_wins_and_the_limit_stops_the_search() {
        // Four nodes about 111 m apart along a meridian.
        let road = line_string![
            (x: 120.0, y: 37.000), (x: 120.0, y: 37.001),
            (x: 120.0, y: 37.002), (x: 120.0, y: 37.003),
        ];
        let graph = WalkGraph::new(&[road]);
        let mut paths = ShortestPaths::new(&graph);
        let reached = paths.run(&[(0, 0.0), (3, 10.0)], 150.0).to_vec();
        assert_eq!(reached, vec![0, 3, 1, 2]);
        let step = graph.edges()[0].length_m;
        assert!((paths.distance(1).unwrap() - step).abs() < 1e-9);
        assert!((paths.distance(2).unwrap() - (10.0 + graph.edges()[2].length_m)).abs() < 1e-9);
        paths.run(&[(0, 0.0)], 50.0);
        assert_eq!(paths.reached(), &[0]);
        assert_eq!(paths.distance(3), None);
    }
}
