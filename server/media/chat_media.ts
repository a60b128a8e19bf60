// Where each image or video of a chat request sits, as the request's JSON path (messages[i].content[j]), in the
// order the chat template places their pad tokens: message by message, part by part, exactly the order of
// models/common/chat_messages.ts normalizeMessages. Error messages and `param` point at the part at fault.
import type { ChatMessage } from '../../models/common/chat_messages.js';
import type { MediaKind } from './options.js';

export interface ChatMediaPart {
  kind: MediaKind;
  /** null for a bare {type: 'image'} part (no URL to load). */
  url: string | null;
  /** e.g. messages[1].content[0].image_url */
  param: string;
}

export function chatMediaParts(messages: readonly ChatMessage[]): ChatMediaPart[] {
  const out: ChatMediaPart[] = [];
  messages.forEach((message, i) => {
    if (!Array.isArray(message.content)) return;
    message.content.forEach((part, j) => {
      const at = `messages[${i}].content[${j}]`;
      switch (part.type) {
        case 'image_url':
          out.push({ kind: 'image', url: part.image_url.url, param: `${at}.image_url` });
          break;
        case 'video_url':
          out.push({ kind: 'video', url: part.video_url.url, param: `${at}.video_url` });
          break;
        case 'image':
        case 'video':
          out.push({ kind: part.type, url: null, param: at });
          break;
      }
    });
  });
  return out;
}
