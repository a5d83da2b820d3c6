"""float64 one-clip reference of gpuaug.functional.insert_clip."""
import numpy as np


def insert_ref(x, clip, position, silence_before=0, silence_after=0, edge_fade=0):
    """``x`` (C, L), ``clip`` (Cc, cl) with Cc in {1, C} -> (C, L + sb + cl + sa)."""
    x = np.asarray(x, dtype=np.float64)
    clip = np.asarray(clip, dtype=np.float64)
    C, L = x.shape
    cl = clip.shape[-1]
    p = min(max(int(position), 0), L)
    gain = np.ones(cl)
    for i in range(cl):
        for d in (i, cl - 1 - i):  # distance from the start, from the end
            if d < edge_fade:
                gain[i] *= np.sin(np.pi / 2 * (d + 0.5) / edge_fade) ** 2
    clip = np.broadcast_to(clip * gain, (C, cl))
    return np.concatenate(
        [x[:, :p], np.zeros((C, silence_before)), clip, np.zeros((C, silence_after)), x[:, p:]], axis=1
    )
